"""English → Spanish with the lecture's encoder–decoder, written with the library's API
(``rnnkit translate train`` is the full application): short Bible verses, the King James
Version against the Reina-Valera 1909 (Debian's sword-text-kjv and sword-text-sparv, read
with pysword once), words as tokens, an LSTM encoder over the reversed English sentence,
an LSTM decoder trained with teacher forcing (--attention: with Luong attention); chrF on
the held-out verses.

    python examples/translate.py [--epochs 3] [--attention]
"""

import argparse

import numpy as np
import sacrebleu

import rnnkit
from rnnkit import optim
from rnnkit.apps import translate as tr
from rnnkit.datasets import bible_en_es
from rnnkit.seq2seq import EncoderDecoder
from rnnkit.seq2seq_attention import AttentionEncoderDecoder


def main(argv=None, path=None):
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--units", type=int, default=128)
    p.add_argument("--attention", action=argparse.BooleanOptionalAction, default=False)
    args = p.parse_args(argv)
    rnnkit.set_seed(0)
    (en, es), (en_test, es_test) = bible_en_es.load_data(path)
    en_tok = [[t.lower() for t in tr.tokenize(s)] for s in en]
    es_tok = [[t.lower() for t in tr.tokenize(s)] for s in es]
    src = tr.Vocab.from_sentences(en_tok, ["<pad>", "<unk>"])  # words seen twice or more
    tgt = tr.Vocab.from_sentences(es_tok, tr.SPECIALS)
    T = max(map(len, en_tok + es_tok))
    x = tr.encode_sources(en_tok, src, T)  # reversed, 0 = padding
    y = tr.encode_targets(es_tok, tgt, T)  # <s> ... </s>
    Model = AttentionEncoderDecoder if args.attention else EncoderDecoder
    model = Model(
        len(src), len(tgt), units=args.units, embed_dim=64, start_id=tr.START, end_id=tr.END
    )
    # the decoder returns logits: the loss must be told so
    model.compile(
        loss="sparse_categorical_crossentropy",
        from_logits=True,
        ignore_class=0,
        optimizer=optim.Adam(3e-3, clip_global_norm=5.0),
    )
    model.fit([x, y[:, :-1]], y[:, 1:], batch_size=16, epochs=args.epochs)  # teacher forcing
    meta = {
        "source_vocab": src.words[2:],
        "target_vocab": tgt.words[4:],
        "max_tokens": T,
        "truecase": tr.truecase_map(es),
        "dictionary": {},
    }
    hyps = tr.Translator(model, meta).translate(en_test)  # greedy
    print(
        f"test chrF {sacrebleu.corpus_chrf(hyps, [es_test]).score:.1f}, "
        f"BLEU {sacrebleu.corpus_bleu(hyps, [es_test]).score:.1f} on {len(hyps)} verses"
    )
    for i in np.arange(3):
        print(f"  {en_test[i]}\n  -> {hyps[i]}\n  (reference: {es_test[i]})")


if __name__ == "__main__":
    main()
