"""Pieces shared by the image-to-image tasks (super-resolution, colorization): whole-image
data and patches, image files, metrics, the patch discriminator, figures and task runs."""
