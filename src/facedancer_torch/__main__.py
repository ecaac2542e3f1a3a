from facedancer_torch.cli import main

main()
