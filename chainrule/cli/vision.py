"""``chainrule similar``, ``transfer``, ``train-captioner`` and ``caption``: image embeddings,
transfer learning and captioning.


    chainrule similar IMAGE_FOLDER --checkpoint MODEL --query IMAGE [-k 5] [--layer NAME]
    chainrule transfer [--seeds 5] [--shots 10] [--plot transfer.png] [--save pretrained.ckpt]
    chainrule train-captioner [--data captions.tsv | --synthetic 3000] --save captioner.ckpt
    chainrule caption IMAGE [IMAGE ...] --checkpoint captioner.ckpt [--beam 3]

The image models they load come from ``chainrule.applications.vision_models``.
"""
import json
import os
import sys
import time

import numpy as np

from .common import HelpFormatter, checkpoint_path, fraction, positive_float, positive_int, seed


def add_commands(sub):
    """Add 'similar', 'transfer', 'train-captioner' and 'caption' to the ``chainrule`` parser."""
    fmt = HelpFormatter

    s = sub.add_parser(
        "similar", help="rank the images of a folder by similarity to a query image",
        description="Turn every image of IMAGE_FOLDER (searched recursively) and the query image "
                    "into feature vectors with a trained model (img2vec: the model cut after "
                    "--layer; by default the input of its last Linear layer), and print the k "
                    "most similar images by cosine similarity, best first: rank, similarity, path. "
                    "The checkpoint may come from 'chainrule transfer --save', 'chainrule "
                    "train-captioner' (its image encoder) or 'chainrule train --save' on digits.",
        formatter_class=fmt)
    s.add_argument("folder", metavar="IMAGE_FOLDER")
    s.add_argument("--checkpoint", required=True, metavar="CKPT", help="the trained model")
    s.add_argument("--query", required=True, metavar="IMAGE", help="the image to match")
    s.add_argument("-k", "--top", type=positive_int, default=5, dest="k",
                   help="how many images to list")
    s.add_argument("--layer", default=None,
                   help="the layer whose output is the feature vector (a dotted module name such "
                        "as '6'); default: the input of the last Linear layer (the captioner: its "
                        "encoder's output)")
    s.add_argument("--clusters", type=positive_int, default=None, metavar="K",
                   help="also group the folder's images into K clusters (k-means on the vectors) "
                        "and print each cluster's members")
    s.add_argument("--batch-size", type=positive_int, default=256, help="images per batch")
    s.set_defaults(func=cmd_similar)

    t = sub.add_parser(
        "transfer", help="the transfer-learning experiment: digits 0-4 -> digits 5-9",
        description="Pretrain a ConvNet on the digits 0-4, then learn the digits 5-9 from only "
                    "--shots labelled images per class: (a) from scratch, (b) a linear classifier "
                    "on the frozen pretrained features, (c) fine-tuning every layer with a smaller "
                    "learning rate for the pretrained ones, (d) fine-tuning the last two layers. "
                    "Prints the test accuracies averaged over --seeds seeds as a table, then one "
                    "line '<method>_accuracy=<mean>' per method.",
        formatter_class=fmt)
    t.add_argument("--seeds", type=positive_int, default=5, help="repetitions (seeds 0..N-1)")
    t.add_argument("--shots", type=positive_int, default=10, help="labelled images per new class")
    t.add_argument("--pretrain-epochs", type=positive_int, default=20,
                   help="epochs of pretraining on digits 0-4")
    t.add_argument("--epochs", type=positive_int, default=60,
                   help="epochs on the few labelled images, for every method")
    t.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate")
    t.add_argument("--pretrained-lr-scale", type=positive_float, default=0.1,
                   help="(c): the pretrained layers learn at lr times this")
    t.add_argument("--plot", metavar="PNG", help="write a bar chart of the accuracies here")
    t.add_argument("--json", metavar="PATH", help="write the accuracies as JSON here")
    t.add_argument("--save", metavar="CKPT",
                   help="save the first seed's pretrained network here (for 'chainrule similar')")
    t.set_defaults(func=cmd_transfer, outputs={"plot": "file", "json": "file", "save": "file"})

    tc = sub.add_parser(
        "train-captioner", help="train an image captioner (CNN encoder + LSTM decoder)",
        description="Train a captioner on an image folder plus a captions file "
                    "(image_name<TAB>caption per line, several lines per image allowed), or on a "
                    "generated set of coloured shapes (the default). Holds out --val-fraction of "
                    "the images, prints BLEU-1..4 on them with a few sample captions, and saves "
                    "the model (for 'chainrule caption'). Ends with the line 'bleu4=<value>'.",
        formatter_class=fmt)
    d = tc.add_argument_group("data")
    d.add_argument("--data", metavar="CAPTIONS_FILE",
                   help="a captions file; the images are in --images (default: images/ next to "
                        "it, else its folder). Without it a synthetic shapes set is generated")
    d.add_argument("--images", metavar="DIR", help="the folder the image names are relative to")
    d.add_argument("--synthetic", type=positive_int, default=4000, metavar="N",
                   help="how many shape scenes to generate when no --data is given")
    d.add_argument("--write-synthetic", metavar="DIR",
                   help="also write the generated set as DIR/images/*.png + DIR/captions.tsv")
    d.add_argument("--size", type=positive_int, default=24,
                   help="image side in pixels (a multiple of 8); images are resized to it")
    d.add_argument("--val-fraction", type=fraction, default=0.1, help="held-out share of images")
    m = tc.add_argument_group("model and training")
    m.add_argument("--width", type=positive_int, default=16, help="channels of the first conv block")
    m.add_argument("--hidden", type=positive_int, default=128, help="LSTM hidden size")
    m.add_argument("--embed", type=positive_int, default=32, help="word embedding size")
    m.add_argument("--epochs", type=positive_int, default=60, help="passes over the images")
    m.add_argument("--batch-size", type=positive_int, default=32, help="images per step")
    m.add_argument("--lr", type=positive_float, default=5e-3, help="Adam learning rate (cosine decay)")
    m.add_argument("--beam", type=positive_int, default=3, help="beam size for the evaluation")
    m.add_argument("--seed", type=seed, default=0, help="seed for data, initialisation, order")
    m.add_argument("--save", metavar="CKPT", default="captioner.ckpt", help="where to save the model")
    m.add_argument("--no-progress", dest="progress", action="store_false", help="hide the progress bar")
    tc.set_defaults(func=cmd_train_captioner,
                    outputs={"save": "file", "write_synthetic": "dir"})

    c = sub.add_parser(
        "caption", help="caption images with a trained captioner",
        description="Print a caption for each image (one image: the caption alone; several: "
                    "'path<TAB>caption' lines).",
        formatter_class=fmt)
    c.add_argument("images", nargs="+", metavar="IMAGE")
    c.add_argument("--checkpoint", required=True, metavar="CKPT",
                   help="a model saved by 'chainrule train-captioner'")
    c.add_argument("--beam", type=positive_int, default=3, help="beam size (1: greedy decoding)")
    c.add_argument("--max-len", type=positive_int, default=20, help="longest caption, in words")
    c.set_defaults(func=cmd_caption)


# -- similar ----------------------------------------------------------------------------------------

def cmd_similar(args):
    from ..applications.transfer import extract_features, kmeans, nearest_neighbours
    from ..applications.vision_models import load_vision_model
    from ..data.prepare import image_files
    vm = load_vision_model(checkpoint_path(args.checkpoint, "best"))
    if not os.path.isfile(args.query):
        raise FileNotFoundError(2, "no such query image", args.query)
    files = image_files(args.folder)
    layer = args.layer if args.layer is not None else vm.default_layer
    X = vm.load(files)
    feats = extract_features(vm.net, X, layer=layer, batch_size=args.batch_size)
    q = extract_features(vm.net, vm.load([args.query]), layer=layer)
    qreal = os.path.realpath(args.query)
    keep = [i for i, f in enumerate(files) if os.path.realpath(f) != qreal]   # not the query itself
    if not keep:
        raise ValueError(f"{args.folder} holds no image besides the query")
    k = min(args.k, len(keep))
    idx, sims = nearest_neighbours(q, feats[keep], k=k)
    print(f"query={args.query} model={vm.description} layer={layer if layer else 'default'} "
          f"images={len(keep)} dim={feats.shape[1]}")
    print(f"{'rank':>4}  {'similarity':>10}  path")
    for r, (i, s) in enumerate(zip(idx[0], sims[0]), start=1):
        print(f"{r:>4}  {s:>10.4f}  {os.path.relpath(files[keep[i]], args.folder)}")
    if args.clusters:
        if args.clusters > len(files):
            raise ValueError(f"--clusters {args.clusters} is more than the {len(files)} images")
        res = kmeans(feats, args.clusters, n_init=3, seed=0)
        print(f"k-means: {args.clusters} clusters, inertia {res.inertia:.4g}")
        for c in range(args.clusters):
            members = [os.path.relpath(files[i], args.folder) for i in np.flatnonzero(res.labels == c)]
            shown = ", ".join(members[:8]) + (f", ... ({len(members)})" if len(members) > 8 else "")
            print(f"cluster {c}: {shown}")
    return 0


# -- transfer ---------------------------------------------------------------------------------------

def cmd_transfer(args):
    from ..applications.transfer_experiment import METHODS, digits_transfer_experiment
    t0 = time.perf_counter()
    res, pretrained = digits_transfer_experiment(
        seeds=args.seeds, shots=args.shots, pretrain_epochs=args.pretrain_epochs,
        epochs=args.epochs, lr=args.lr, pretrained_lr_scale=args.pretrained_lr_scale,
        return_pretrained=True)
    print(res.table())
    print(f"({time.perf_counter() - t0:.1f}s)")
    if args.plot:
        res.plot(args.plot)
        print(f"wrote {args.plot}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res.to_dict(), f, indent=2)
        print(f"wrote {args.json}")
    if args.save:
        from ..applications.vision_models import save_vision_model
        save_vision_model(args.save, pretrained, res.model_config, mode="L", size=8,
                          classes=[str(i) for i in range(5)])
        print(f"saved the pretrained network (seed {res.seeds[0]}) to {args.save}")
    for m in METHODS:
        if m in res.acc:
            print(f"{m}_accuracy={res.mean(m):.4f}")
    return 0


# -- captioning -------------------------------------------------------------------------------------

def cmd_train_captioner(args):
    import chainrule as cr
    from ..applications.captioning import evaluate_captioner, fit_captioner, save_captioner
    from ..data.captions import build_caption_vocab
    from ..data.prepare import caption_data
    from ..models.captioner import Captioner
    data, where = caption_data(args.data, args.images, synthetic=args.synthetic, size=args.size,
                               seed=args.seed, write_synthetic=args.write_synthetic, log=print)
    train, val = data.split(args.val_fraction, seed=args.seed)
    vocab = build_caption_vocab(train)
    cr.manual_seed(args.seed)
    model = Captioner(len(vocab), in_channels=data.images.shape[1], image_size=args.size,
                      width=args.width, embed_dim=args.embed, hidden_size=args.hidden,
                      pad_index=vocab.pad_index, bos_index=vocab.bos_index,
                      eos_index=vocab.eos_index)
    print(f"data={where} train_images={len(train)} val_images={len(val)} vocabulary={len(vocab)} "
          f"parameters={model.num_parameters()}")
    t0 = time.perf_counter()
    fit_captioner(model, train, vocab, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                  seed=args.seed, progress=args.progress, log=print)
    print(f"trained {args.epochs} epochs in {time.perf_counter() - t0:.1f}s")
    save_captioner(args.save, model, vocab, image_mode="RGB")
    print(f"saved the captioner to {args.save}")
    scores, hyps = evaluate_captioner(model, val, vocab, beam_size=args.beam, return_captions=True)
    for i in range(min(5, len(val))):
        print(f"{val.names[i]}: {hyps[i]!r}  (reference: {val.captions[i][0]!r})")
    print(f"held-out BLEU (beam {args.beam}, {len(val)} images): "
          + " ".join(f"{k}={v:.4f}" for k, v in scores.items() if k != "bleu4"))
    print(f"bleu4={scores['bleu4']:.4f}")
    return 0


def cmd_caption(args):
    from ..data.datasets import load_image
    from ..applications.captioning import load_captioner
    if not os.path.exists(args.checkpoint):
        raise FileNotFoundError(2, "no such checkpoint", args.checkpoint)
    model, vocab, state = load_captioner(args.checkpoint)
    size = int(state["image"]["size"])
    for p in args.images:
        if not os.path.isfile(p):
            raise FileNotFoundError(2, "no such image", p)
    X = np.stack([load_image(p, size=(size, size), mode=state["image"]["mode"], where="caption")
                  for p in args.images])
    caps = model.caption(X, vocab, beam_size=args.beam, max_len=args.max_len)
    if len(args.images) == 1:
        print(caps[0])
    else:
        for p, c in zip(args.images, caps):
            sys.stdout.write(f"{p}\t{c}\n")
    return 0
