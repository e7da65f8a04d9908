"""Copy deploy/lambda/transform.py into deploy/pipeline.yaml as the function's inline code.

    python deploy/sync_inline_code.py           # rewrite the template
    python deploy/sync_inline_code.py --check   # exit 1 if the template is out of date

The template embeds the code (CloudFormation puts inline code in a file named ``index``, hence
the handler ``index.lambda_handler``) so one ``stack deploy`` needs no artifact bucket.
https://docs.aws.amazon.com/AWSCloudFormation/latest/TemplateReference/aws-properties-lambda-function-code.html
The block is replaced as text, not re-dumped as YAML, so the template's comments survive.
"""

from __future__ import annotations

import sys
from pathlib import Path

DEPLOY = Path(__file__).resolve().parent
TEMPLATE = DEPLOY / "pipeline.yaml"
SOURCE = DEPLOY / "lambda" / "transform.py"
START = "        ZipFile: |\n"
END = "        # End of generated code.\n"
INDENT = " " * 10


def render(template: str, code: str) -> str:
    """``template`` with the code block between START and END replaced by ``code``."""
    head, sep, rest = template.partition(START)
    if not sep:
        raise ValueError(f"{TEMPLATE.name}: no line {START.strip()!r}")
    _, sep, tail = rest.partition(END)
    if not sep:
        raise ValueError(f"{TEMPLATE.name}: no line {END.strip()!r} after the code")
    # Blank lines stay empty (no trailing spaces); a literal block keeps them as newlines.
    body = "".join(INDENT + line if line.strip() else "\n" for line in code.splitlines(keepends=True))
    return head + START + body + END + tail


def main(argv: list[str]) -> int:
    current = TEMPLATE.read_text(encoding="utf-8")
    wanted = render(current, SOURCE.read_text(encoding="utf-8"))
    if "--check" in argv:
        if current != wanted:
            print(f"{TEMPLATE} is out of date: run python {Path(__file__).name}", file=sys.stderr)
            return 1
        return 0
    if current != wanted:
        TEMPLATE.write_text(wanted, encoding="utf-8")
        print(f"updated {TEMPLATE}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
