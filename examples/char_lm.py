"""A character-level language model (Karpathy's char-rnn) trained with truncated BPTT.

Embedding -> LSTM -> Linear predicts the next character at every step. The text is cut into 8
parallel streams and walked in chunks of 64 characters: the hidden state is carried from chunk to
chunk, but back-propagation stops at the chunk boundary (truncated BPTT), and the gradient norm is
clipped to 5. Then text is sampled with a temperature and top-k.

    python examples/char_lm.py                 # the opening of Alice's Adventures in Wonderland
    python examples/char_lm.py my_text.txt     # any text file

The same from the command line: chainrule train-char my_text.txt --out runs/char; chainrule
generate runs/char --temperature 0.8 --top-k 10.
"""
import math
import sys
import time

from chainrule.data.text import read_text
from chainrule.applications.text_generation import sample, train_char_rnn

# Lewis Carroll, Alice's Adventures in Wonderland (1865), chapter I: public domain.
ALICE = """\
Alice was beginning to get very tired of sitting by her sister on the bank, and of having nothing
to do: once or twice she had peeped into the book her sister was reading, but it had no pictures or
conversations in it, 'and what is the use of a book,' thought Alice 'without pictures or
conversations?'

So she was considering in her own mind (as well as she could, for the hot day made her feel very
sleepy and stupid), whether the pleasure of making a daisy-chain would be worth the trouble of
getting up and picking the daisies, when suddenly a White Rabbit with pink eyes ran close by her.

There was nothing so very remarkable in that; nor did Alice think it so very much out of the way
to hear the Rabbit say to itself, 'Oh dear! Oh dear! I shall be late!' (when she thought it over
afterwards, it occurred to her that she ought to have wondered at this, but at the time it all
seemed quite natural); but when the Rabbit actually took a watch out of its waistcoat-pocket, and
looked at it, and then hurried on, Alice started to her feet, for it flashed across her mind that
she had never before seen a rabbit with either a waistcoat-pocket, or a watch to take out of it,
and burning with curiosity, she ran across the field after it, and fortunately was just in time to
see it pop down a large rabbit-hole under the hedge.

In another moment down went Alice after it, never once considering how in the world she was to
get out again.

The rabbit-hole went straight on like a tunnel for some way, and then dipped suddenly down, so
suddenly that Alice had not a moment to think about stopping herself before she found herself
falling down a very deep well.

Either the well was very deep, or she fell very slowly, for she had plenty of time as she went down
to look about her and to wonder what was going to happen next. First, she tried to look down and
make out what she was coming to, but it was too dark to see anything; then she looked at the sides
of the well, and noticed that they were filled with cupboards and book-shelves; here and there she
saw maps and pictures hung upon pegs. She took down a jar from one of the shelves as she passed; it
was labelled 'ORANGE MARMALADE', but to her great disappointment it was empty: she did not like to
drop the jar for fear of killing somebody underneath, so managed to put it into one of the
cupboards as she fell past it.

'Well!' thought Alice to herself, 'after such a fall as this, I shall think nothing of tumbling
down stairs! How brave they'll all think me at home! Why, I wouldn't say anything about it, even
if I fell off the top of the house!' (Which was very likely true.)

Down, down, down. Would the fall never come to an end! 'I wonder how many miles I've fallen by this
time?' she said aloud. 'I must be getting somewhere near the centre of the earth. Let me see: that
would be four thousand miles down, I think--' (for, you see, Alice had learnt several things of
this sort in her lessons in the schoolroom, and though this was not a very good opportunity for
showing off her knowledge, as there was no one to listen to her, still it was good practice to say
it over) '--yes, that's about the right distance--but then I wonder what Latitude or Longitude
I've got to?' (Alice had no idea what Latitude was, or Longitude either, but thought they were nice
grand words to say.)
"""


def main(text=None, epochs=25, seq_len=64, batch_size=8, hidden_size=128, embedding_dim=48,
         lr=3e-3, clip=5.0, sample_length=300, seed=0, verbose=True):
    """Train on ``text`` (default: the Alice passage) and print samples. Returns
    (history, samples) with samples a dict {(temperature, top_k): text}."""
    text = ALICE.replace("\n", " ").replace("  ", "\n\n") if text is None else text
    say = print if verbose else (lambda *a, **k: None)
    say(f"{len(text)} characters, {len(set(text))} distinct; uniform guessing costs "
        f"ln({len(set(text))}) = {math.log(len(set(text))):.3f} nats per character")

    def show(epoch, logs):
        if epoch == 0 or (epoch + 1) % 5 == 0 or epoch + 1 == epochs:
            say(f"epoch {epoch + 1:3d}  train loss {logs['loss']:.3f}  val loss "
                f"{logs['val_loss']:.3f} nats/char  ({logs['time']:.1f} s)")

    t0 = time.perf_counter()
    model, vocab, history = train_char_rnn(
        text, epochs=epochs, seq_len=seq_len, batch_size=batch_size, lr=lr, clip=clip,
        embedding_dim=embedding_dim, hidden_size=hidden_size, val_fraction=0.1, seed=seed,
        on_epoch_end=show)
    say(f"trained in {time.perf_counter() - t0:.1f} s: loss {history['loss'][0]:.3f} -> "
        f"{history['loss'][-1]:.3f}")
    prime = text.split()[0] + " "                    # 'Alice ' for the default text
    samples = {}
    for temperature, top_k in ((0.5, None), (0.8, 10), (1.0, None), (1.0, 1)):
        s = sample(model, vocab, prime, sample_length, temperature=temperature, top_k=top_k,
                   seed=seed)
        samples[(temperature, top_k)] = s
        say(f"\n--- temperature {temperature}, top_k {top_k} ---\n{s}")
    return history, samples


if __name__ == "__main__":
    main(read_text(sys.argv[1]) if len(sys.argv) > 1 else None)
