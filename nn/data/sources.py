"""Where MNIST and Fashion-MNIST come from: file names, published checksums, mirrors.

Each file has three published digests (see `nn.data.checksums.Checksums`): the
md5 of the ``.gz`` (torchvision, Zalando's README), the sha256 of the ``.gz``
(TensorFlow Datasets; MNIST only) and the sha256 of the gunzipped IDX content,
which survives recompression by a mirror or a distribution.
"""

from __future__ import annotations

from dataclasses import dataclass

from nn.data.checksums import Checksums

__all__ = ["DATASETS", "SYSTEM_DIRS", "DatasetInfo"]


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset: name, title, mirrors and its file table.

    ``files`` maps ``(split, "images" | "labels")`` to ``(file name, Checksums)``.
    """

    name: str
    title: str
    files: dict
    mirrors: tuple[str, ...]


def _files(table: dict) -> dict:
    return {
        (split, kind): (
            f"{prefix}-{kind}-idx{3 if kind == 'images' else 1}-ubyte.gz",
            Checksums(*digests),
        )
        for (split, kind), digests in table.items()
        for prefix in ["train" if split == "train" else "t10k"]
    }


# (md5 of the .gz, sha256 of the .gz, sha256 of the gunzipped IDX content), as
# published: torchvision (md5), TensorFlow Datasets (sha256), Zalando's README.
DATASETS = {
    "mnist": DatasetInfo(
        "mnist",
        "MNIST",
        _files(
            {
                ("train", "images"): (
                    "f68b3c2dcbeaaa9fbdd348bbdeb94873",
                    "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                ("train", "labels"): (
                    "d53e105ee54ea40749a09fcbcd1e9432",
                    "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
                ("test", "images"): (
                    "9fb629c4189551a2d022fa330f9573f3",
                    "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                ("test", "labels"): (
                    "ec29112dd5afa0611ce80d1b7f02629c",
                    "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            }
        ),
        (
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
    ),
    "fashion-mnist": DatasetInfo(
        "fashion-mnist",
        "Fashion-MNIST",
        _files(
            {
                ("train", "images"): (
                    "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                    None,
                    "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
                ),
                ("train", "labels"): (
                    "25c81989df183df01b3e8a0aad5dffbe",
                    None,
                    "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
                ),
                ("test", "images"): (
                    "bef4ecab320f06d8554ea6380940ec79",
                    None,
                    "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
                ),
                ("test", "labels"): (
                    "bb300cfdad3c16e7a12a480ee83cd310",
                    None,
                    "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
                ),
            }
        ),
        (
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",
        ),
    ),
}
#: Folders that system packages install datasets into, searched after the cache.
SYSTEM_DIRS = {"fashion-mnist": ("/usr/share/datasets/fashion-mnist",)}
