"""`python -m train`: train the Siamese model; the defaults reproduce the default model's run."""

from __future__ import annotations

import argparse
import logging
import os

# TensorFlow's C++ INFO and WARNING lines off unless the user chose a level; set before anything imports it.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Light imports only until the arguments are parsed: `--help` and usage errors never load TensorFlow.
from siamese_runtime.cli.arguments import add_header_flags  # noqa: E402
from siamese_runtime.cli.exits import run_command  # noqa: E402

from .config import TrainConfig, default_train_files  # noqa: E402
from .data_home import TRAIN_FILES, missing, not_found_message  # noqa: E402
from .run_directory import RunDirectory, RunDirectoryError  # noqa: E402


def main() -> int:
    defaults = TrainConfig(out="")
    parser = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", required=True, help="run directory to write")
    parser.add_argument("--train", nargs="+", default=argparse.SUPPRESS, dest="train_files",
                        help="labeled pair files (headerless TSV: sentence1<TAB>sentence2<TAB>label); default: "
                             f"{', '.join(TRAIN_FILES)} in the data folder ($SIAMESE_DATA, else ../shared/data)")
    parser.add_argument("--left", dest="left_column", help="first sentence column: name or number from 1")
    parser.add_argument("--right", dest="right_column", help="second sentence column: name or number from 1")
    parser.add_argument("--label", dest="label_column", help="label column (default: 'label', else the third)")
    add_header_flags(parser, "TSV/CSV training files")
    parser.add_argument("--on-bad-row", choices=["stop", "skip"], default="stop",
                        help="stop at a malformed row with file:line:reason, or skip it into rejected_rows.jsonl")
    parser.add_argument("--file-weights", type=float, nargs="+",
                        help="loss weight of each --train file, in order (default: 1 each)")
    parser.add_argument("--no-class-balance", dest="class_balance", action="store_false",
                        help="do not balance the classes of each file in the loss")
    parser.add_argument("--implied-pairs", action="store_true",
                        help="add the training pairs the labels imply through a shared sentence (a~b, b~c: a~c; "
                             "a~b, b!~c: a!~c)")
    parser.add_argument("--teachers", nargs="+", default=None, metavar="RUN",
                        help="distill: finished runs whose mean score on each training pair is mixed into its target "
                             "(each must have held out this run's validation pairs: same data, --seed and "
                             "--validation-fraction)")
    parser.add_argument("--teacher-weight", type=float, default=defaults.teacher_weight,
                        help="share of the teachers' score in a training target (the 0/1 label has the rest)")
    parser.add_argument("--max-pairs", type=int, default=None, help="train on a seeded sample of this many pairs")
    parser.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--split-seed", type=int, default=defaults.split_seed,
                        help="seed of the validation split alone (default: --seed); teachers and their students, or "
                             "members of an ensemble, share one")
    parser.add_argument("--max-length", type=int, default=defaults.max_length, help="characters kept per sentence")
    parser.add_argument("--min-count", type=int, default=defaults.min_count, help="rarer characters map to OOV")
    parser.add_argument("--vectors", help="pretrained char vectors (word2vec format); default: train Word2Vec")
    parser.add_argument("--vectors-binary", action="store_true", help="--vectors is in word2vec binary format")
    parser.add_argument("--embedding-dim", type=int, default=defaults.embedding_dim, help="Word2Vec size")
    parser.add_argument("--vector-epochs", type=int, default=defaults.vector_epochs, help="Word2Vec epochs")
    parser.add_argument("--trainable-embeddings", action=argparse.BooleanOptionalAction,
                        default=defaults.trainable_embeddings,
                        help="fine-tune the char vectors after the warm-up "
                             "(frozen, as the notebook, generalized better)")
    parser.add_argument("--projection", type=int, default=defaults.projection,
                        help="project the char vectors to this width before the first BiLSTM (a learned, bias-free "
                             "map folded into the embedding table at export: the first BiLSTM's input work shrinks "
                             "by that width over the vectors')")
    parser.add_argument("--lstm-units", type=int, nargs="+", default=list(defaults.lstm_units))
    parser.add_argument("--head", choices=["manhattan", "euclidean", "cosine", "mlp"], default=defaults.head,
                        help="similarity: exp(-L1) with BCE (the notebook's), exp(-L2) with contrastive loss, cosine, "
                             "or mlp: a learned (|u - v|, u * v) -> relu -> sigmoid head")
    parser.add_argument("--head-units", type=int, default=defaults.head_units, help="relu units of the mlp head")
    parser.add_argument("--head-dropout", type=float, default=defaults.head_dropout,
                        help="dropout on the mlp head's relu units (training only)")
    parser.add_argument("--pooling", choices=["last", "max-mean", "max-mean-attention"], default=defaults.pooling,
                        help="encoding: the last BiLSTM's final states (the notebook's), max and mean over all its "
                             "states, or those and an attention-weighted mean within the sentence")
    parser.add_argument("--dropout", type=float, nargs="+", default=list(defaults.dropout),
                        help="dropout rate after each BiLSTM, one per --lstm-units (the notebook used 0.5 0.5; "
                             "the last one draws a different mask for each side of a pair, so training saw identical "
                             "sentences as different; 0 there lifted validation ROC-AUC from 0.76 to 0.83)")
    parser.add_argument("--pair-dropout", type=float, default=defaults.pair_dropout,
                        help="dropout on the two encodings with one mask for both sides (training only)")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--warmup-epochs", type=int, default=defaults.warmup_epochs,
                        help="first epochs with the char embeddings frozen (then fine-tuned unless frozen)")
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--learning-rate", type=float, default=defaults.learning_rate)
    parser.add_argument("--patience", type=int, default=defaults.patience, help="early-stopping patience")
    args = parser.parse_args()
    for teacher in args.teachers or []:
        try:
            RunDirectory.load(teacher)
        except RunDirectoryError as error:
            parser.error(f"--teachers: {error}")
    if "train_files" not in args:
        if absent := missing(TRAIN_FILES):
            parser.error(not_found_message(absent))
        args.train_files = default_train_files()
    logging.basicConfig(level=logging.INFO, format="train: %(message)s")
    logging.getLogger("gensim").setLevel(logging.WARNING)
    config = TrainConfig(**{**vars(args), "lstm_units": tuple(args.lstm_units), "dropout": tuple(args.dropout)})
    from .run import train_run  # Keras, TensorFlow and gensim: only now

    def train() -> int:
        train_run(config)
        return 0

    return run_command("train", train, verbose=True)  # a defect shows its traceback


if __name__ == "__main__":
    raise SystemExit(main())
