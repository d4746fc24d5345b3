"""Test double of edgetpu_compiler: writes <stem>_edgetpu.tflite and a log in the compiler's documented format.

The ``fake_edgetpu_compiler`` fixture installs it on PATH as ``edgetpu_compiler``. With
FAKE_EDGETPU_COMPILER_FAIL set it fails the way compiler 16.0 does on an op version it cannot read.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

from edgecnn.runtime.tflite_file import load_tflite

VERSION = "Edge TPU Compiler version 16.0.384591198"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-s", "--show_operations", action="store_true")
    p.add_argument("-o", "--out_dir", default=".")
    p.add_argument("model")
    a = p.parse_args()
    model, out = Path(a.model), Path(a.out_dir)
    if os.environ.get("FAKE_EDGETPU_COMPILER_FAIL"):
        print(VERSION)
        print(
            "ERROR: Didn't find op for builtin opcode 'CONV_2D' version '6'. An older version of this builtin might be supported."
        )
        print("\nERROR: Registration failed.\n\nInvalid model: " + model.name + "\nModel could not be parsed")
        sys.exit(1)
    ops = [code.name for code, _ in load_tflite(model).operators()]
    shutil.copy(model, out / (model.stem + "_edgetpu.tflite"))
    table = "Operator                       Count      Status\n\n" + "".join(
        f"{name:<30} {ops.count(name):<10} Mapped to Edge TPU\n" for name in dict.fromkeys(ops)
    )
    (out / (model.stem + "_edgetpu.log")).write_text(
        f"{VERSION}\nInput: {model.name}\nOutput: {model.stem}_edgetpu.tflite\n\n{table}"
    )
    print(VERSION + "\nStarted a compilation timeout timer of 180 seconds.\n")
    print("Model compiled successfully in 12 ms.\n\nInput model: " + str(model) + "\nInput size: 20.00KiB")
    print("On-chip memory used for caching model parameters: 10.00KiB")
    print("On-chip memory remaining for caching model parameters: 7.90MiB")
    print("Off-chip memory used for streaming uncached model parameters: 0.00B")
    print("Number of Edge TPU subgraphs: 1\nTotal number of operations: " + str(len(ops)))
    print("Operation log: " + model.stem + "_edgetpu.log\n")
    if a.show_operations:
        print(table)
    print("Compilation child process completed within timeout period.\nCompilation succeeded!")


if __name__ == "__main__":
    main()
