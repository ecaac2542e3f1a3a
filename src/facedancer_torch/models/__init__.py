"""FaceDancer networks: generator (with AFFA), discriminator, identity encoders."""
