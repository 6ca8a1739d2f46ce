"""`make demo` until the harness lands (issue 5): what the core can show offline in seconds.

The real demo is a sweep of experiments/demo.yaml on the offline benchmark with the real MiniLM.
"""

from __future__ import annotations

from scalearn.params import count_parameters

METHODS = ("adapter", "adapterfusion", "scalearn", "scalearn_uniform", "scalearn_pp", "scalearn_uniform_pp")


def main() -> None:
    print("make demo: the offline demo sweep arrives with the harness (issue 5).")
    print("Until then, trainable transfer parameters per target (head excluded), from configs alone:")
    print(f"  {'method':22s}{'roberta-base, 8 sources':>26s}{'MiniLM-L6, 8 sources':>24s}")
    for method in METHODS:
        base = count_parameters("roberta-base", method, 8)["transfer"]
        minilm = count_parameters("minilm", method, 8)["transfer"]
        print(f"  {method:22s}{base:>26,}{minilm:>24,}")


if __name__ == "__main__":
    main()
