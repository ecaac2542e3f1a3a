"""FaceDancer losses: adversarial, identity, reconstruction, cycle, perceptual, IFSR."""
