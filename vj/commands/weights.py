"""``vj weights``: see which model weights are available, download them, convert .bin checkpoints to safetensors.

* ``vj weights status`` - for each BigGAN-deep model: found locally (and where) or not, the Hub repository used,
  the Hugging Face cache folder. Never touches the network.
* ``vj weights download NAME [--repo OWNER/NAME]`` - fetch ``config.json`` and the weights into the Hugging Face
  cache (progress bar), then verify them by a strict load.
* ``vj weights convert SRC DST.safetensors [--model NAME]`` - rewrite a published ``.bin`` checkpoint (or a folder
  holding one with ``config.json``) as one ``.safetensors`` file with the configuration in its metadata, verified
  by a strict load.
"""

from __future__ import annotations

HELP = "show, download or convert model weights (BigGAN-deep)"


def configure(parser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    sub.add_parser("status", help="which models' weights are available locally, and where (no network)")
    p = sub.add_parser("download", help="download a model's weights into the Hugging Face cache")
    p.add_argument("name", help="biggan-deep-128, biggan-deep-256 or biggan-deep-512")
    p.add_argument("--repo", metavar="OWNER/NAME", help="Hugging Face Hub repository (default: see `status`)")
    p = sub.add_parser("convert", help="convert a .bin checkpoint to .safetensors (verified by a strict load)")
    p.add_argument("src", help="pytorch_model.bin, or a folder with it and config.json")
    p.add_argument("dst", help="output file ending in .safetensors")
    p.add_argument("--model", metavar="NAME", default=None,
                   help="model of a bare .bin without config.json (default biggan-deep-128)")
    parser.set_defaults(action=None)


def _status() -> int:
    from vj.models import list_models
    from vj.models import weights as W

    print(f"Hugging Face cache: {W.hf_cache_dir()}")
    for row in list_models():
        if not row["needs_weights"]:
            state = "available" if row["available"] else "missing  "
            print(f"  {row['name']:<16} {state}  {row['where']} (needs no weights)")
            continue
        state = "available" if row["available"] else "missing  "
        rid = W.repo_for(row["name"]) or "-"
        print(f"  {row['name']:<16} {state}  {row['where']}  [repo {rid}]")
    return 0


def run(args) -> int:
    from vj.errors import VJError

    if args.action in (None, "status"):
        return _status()
    from vj.models import canonical_name
    from vj.models import weights as W

    if args.action == "download":
        name = canonical_name(args.name)
        if name not in W.BIGGAN_NAMES:
            raise VJError(f"only BigGAN-deep weights can be downloaded; valid: {', '.join(W.BIGGAN_NAMES)}")
        found = W.find_local(name, repo=args.repo)
        loc = found or W.download(name, args.repo)
        W.load_location(loc)  # strict verification
        print(f"{name}: {'already present' if found else 'downloaded'}, verified: {loc.weights_path}")
        return 0
    if args.action == "convert":
        model = canonical_name(args.model) if args.model else None
        if model is not None and model not in W.BIGGAN_NAMES:
            raise VJError(f"--model must be one of {', '.join(W.BIGGAN_NAMES)}")
        dst = W.convert(args.src, args.dst, model)
        print(f"wrote {dst} (verified by a strict load)")
        return 0
    raise VJError(f"unknown action {args.action!r}")  # pragma: no cover - argparse restricts the choices
