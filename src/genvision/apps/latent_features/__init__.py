"""Latent features of trained generative models: are they useful for recognition?

``genvision features probe RUN`` asks three questions of a representation, each against
the raw-pixel baseline on the same images:

* **linear probe** -- a logistic regression trained on 100 (or 1000) labelled training
  images, scored on a held-out test split (the usual test of self-supervised features,
  e.g. Chen et al. 2020, https://arxiv.org/abs/2002.05709, section 4);
* **clustering** -- k-means with k = number of classes, scored by normalised mutual
  information (NMI) and adjusted Rand index (ARI) against the labels;
* **2-D maps** -- PCA and t-SNE (van der Maaten & Hinton 2008,
  https://jmlr.org/papers/v9/vandermaaten08a.html) coloured by class.

Representations: a VAE's encoder mean mu(x) (Kingma & Welling 2013,
https://arxiv.org/abs/1312.6114) and a GAN discriminator's penultimate features (Radford
et al. 2015, https://arxiv.org/abs/1511.06434, section 5.1 used DCGAN's discriminator
features as a feature extractor).

Modules: :mod:`.data` (which images, with their protocol), :mod:`.extract` (features of a
run), :mod:`.scores` (probe and clustering), :mod:`.maps` (2-D figures), :mod:`.report`
(JSON and Markdown), :mod:`.probe` (the whole probe of one run); the command line is
:mod:`genvision.cli.probe`.
"""
