"""What trained networks are for, as the course's applications: each module is a task built on the
library's layers, losses and the Trainer, not new math.

- ``transfer``: cut a network after a layer, image embeddings (img2vec), nearest neighbours,
  k-means, freezing and fine-tuning regimes, linear probes;
- ``transfer_experiment``: the worked digits 0-4 -> 5-9 experiment (``chainrule transfer``);
- ``captioning``: training and BLEU-scoring the image captioner (``models.captioner``);
- ``text_generation``: a character language model trained with truncated BPTT, and sampling;
- ``seq2seq``: the reverse / sort / dates tasks, training and exact-match scoring;
- ``sequence_tasks``: masked losses, the tagger's training, synthetic tagging and sentiment data;
- ``text_metrics``: corpus and sentence BLEU.

Import the module you need (``from chainrule.applications.transfer import extract_features``);
this package imports none of them, so ``import chainrule`` stays light.
"""
