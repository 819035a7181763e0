"""``croissant.json``: the MLCommons Croissant 1.0 record of a generated set, a JSON-LD
document ``mlcroissant`` validates and iterates from the job's downloaded folder.

Every format lists ``manifest.csv`` (a FileObject with its SHA-256) and describes three
record sets: ``classes`` (label → class name, inline), ``manifest`` (one record per image:
index, file, member, label, class_name, sha256) and ``images``, the images themselves as
the format holds them: PNG files (png), zip members (imagefolder), tar members
(webdataset) or the Parquet shards' columns (parquet). The npz has no Croissant reader,
so it is listed as a file and its images are described through the manifest alone.

Written as a plain dict: the worker does not need mlcroissant (rdflib, pandas, networkx);
tests validate and iterate the record with it.
"""

from __future__ import annotations

from typing import Any

from worker.formats.base import MANIFEST
from worker.formats.description import Description

CONTEXT: dict[str, Any] = {
    "@language": "en",
    "@vocab": "https://schema.org/",
    "citeAs": "cr:citeAs",
    "column": "cr:column",
    "conformsTo": "dct:conformsTo",
    "cr": "http://mlcommons.org/croissant/",
    "rai": "http://mlcommons.org/croissant/RAI/",
    "data": {"@id": "cr:data", "@type": "@json"},
    "dataType": {"@id": "cr:dataType", "@type": "@vocab"},
    "dct": "http://purl.org/dc/terms/",
    "equivalentProperty": "cr:equivalentProperty",
    "examples": {"@id": "cr:examples", "@type": "@json"},
    "extract": "cr:extract",
    "field": "cr:field",
    "fileProperty": "cr:fileProperty",
    "fileObject": "cr:fileObject",
    "fileSet": "cr:fileSet",
    "format": "cr:format",
    "includes": "cr:includes",
    "isLiveDataset": "cr:isLiveDataset",
    "jsonPath": "cr:jsonPath",
    "key": "cr:key",
    "md5": "cr:md5",
    "parentField": "cr:parentField",
    "path": "cr:path",
    "recordSet": "cr:recordSet",
    "references": "cr:references",
    "regex": "cr:regex",
    "repeated": "cr:repeated",
    "replace": "cr:replace",
    "samplingRate": "cr:samplingRate",
    "sc": "https://schema.org/",
    "separator": "cr:separator",
    "source": "cr:source",
    "subField": "cr:subField",
    "transform": "cr:transform",
}
CONFORMS_TO = "http://mlcommons.org/croissant/1.0"
SPDX = "https://spdx.org/licenses/{}.html"
SPDX_IDS = {"mit": "MIT", "cc-by-4.0": "CC-BY-4.0"}
NPZ_FORMAT = "https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html"


def _file(d: Description, name: str, encoding: str) -> dict[str, Any]:
    return {
        "@type": "cr:FileObject",
        "@id": name,
        "name": name,
        "contentUrl": name,
        "contentSize": f"{d.files.get(name, 0)} B",
        "encodingFormat": encoding,
        "sha256": d.sha256[name],
    }


def _field(
    record: str, name: str, data_type: str, source: dict[str, Any], description: str = ""
) -> dict[str, Any]:
    made = {
        "@type": "cr:Field",
        "@id": f"{record}/{name}",
        "name": name,
        "dataType": data_type,
        "source": source,
    }
    if description:
        made["description"] = description
    return made


def _column(node: dict[str, str], column: str) -> dict[str, Any]:
    return {**node, "extract": {"column": column}}


def _content(node: dict[str, str]) -> dict[str, Any]:
    return {**node, "extract": {"fileProperty": "content"}}


def _index_from(node: dict[str, str], prop: str, pattern: str) -> dict[str, Any]:
    """The image's index, read from its file name (``…/000042.png`` → 42)."""
    return {**node, "extract": {"fileProperty": prop}, "transform": {"regex": pattern}}


def _images(d: Description) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The format's files, and the record set of its images (None: no reader for them)."""
    fmt = d.output_format
    rs = "images"
    if fmt == "png":
        files = {"@id": "png-files", "@type": "cr:FileSet", "name": "png-files"}
        node = {"fileSet": "png-files"}
        return [{**files, "encodingFormat": "image/png", "includes": "images/*.png"}], _record_set(
            rs,
            [
                _field(rs, "image", "sc:ImageObject", _content(node)),
                _field(rs, "file", "sc:Text", {**node, "extract": {"fileProperty": "fullpath"}}),
            ],
        )
    if fmt == "imagefolder":
        archive = _file(d, d.location, "application/zip")
        node = {"fileSet": "zip-members"}
        members: dict[str, Any] = {
            "@type": "cr:FileSet",
            "@id": "zip-members",
            "name": "zip-members",
            "containedIn": {"@id": d.location},
            "encodingFormat": "image/png",
            "includes": "*/*.png",
        }
        return [archive, members], _record_set(
            rs,
            [
                _field(rs, "image", "sc:ImageObject", _content(node)),
                _field(
                    rs,
                    "class_folder",
                    "sc:Text",
                    {
                        **node,
                        "extract": {"fileProperty": "fullpath"},
                        "transform": {"regex": "^([^/]*)/.*$"},
                    },
                    "the class's folder (its name, path-unsafe characters replaced)",
                ),
                _field(rs, "file", "sc:Text", {**node, "extract": {"fileProperty": "fullpath"}}),
            ],
        )
    if fmt == "webdataset":
        shards = [
            _file(d, name, "application/x-tar")
            for name in sorted(d.sha256)
            if name.endswith(".tar")
        ]
        node = {"fileSet": "tar-members"}
        members = {
            "@type": "cr:FileSet",
            "@id": "tar-members",
            "name": "tar-members",
            "containedIn": [{"@id": shard["@id"]} for shard in shards],
            "encodingFormat": "image/png",
            "includes": "*.png",
        }
        return [*shards, members], _record_set(
            rs,
            [
                _field(rs, "image", "sc:ImageObject", _content(node)),
                _field(rs, "file", "sc:Text", {**node, "extract": {"fileProperty": "filename"}}),
            ],
        )
    if fmt == "parquet":
        parquet_files: dict[str, Any] = {
            "@type": "cr:FileSet",
            "@id": "parquet-shards",
            "name": "parquet-shards",
            "encodingFormat": "application/x-parquet",
            "includes": "data/*.parquet",
        }
        node = {"fileSet": "parquet-shards"}
        return [parquet_files], _record_set(
            rs,
            [
                _field(rs, "index", "sc:Integer", _column(node, "index")),
                _field(rs, "label", "sc:Integer", _column(node, "label")),
                _field(rs, "seed", "sc:Integer", _column(node, "seed")),
                _field(rs, "model_version", "sc:Text", _column(node, "model_version")),
                _field(
                    rs,
                    "image",
                    "sc:ImageObject",
                    {**_column(node, "image"), "transform": {"jsonPath": "bytes"}},
                ),
            ],
        )
    return [_file(d, d.location, NPZ_FORMAT)], None


def _record_set(
    name: str, fields: list[dict[str, Any]], description: str = "", **more: Any
) -> dict[str, Any]:
    made = {"@type": "cr:RecordSet", "@id": name, "name": name, "field": fields, **more}
    if description:
        made["description"] = description
    return made


def record(d: Description) -> dict[str, Any]:
    model = d.model
    license_id, _ = d.license
    node = {"fileObject": MANIFEST}
    manifest = _record_set(
        "manifest",
        [
            _field("manifest", "index", "sc:Integer", _column(node, "index")),
            _field("manifest", "file", "sc:Text", _column(node, "file")),
            _field("manifest", "member", "sc:Text", _column(node, "member")),
            _field("manifest", "label", "sc:Integer", _column(node, "label")),
            _field("manifest", "class_name", "sc:Text", _column(node, "class_name")),
            _field("manifest", "sha256", "sc:Text", _column(node, "sha256")),
        ],
        "one record per image, in generation order: where it is, its label, its checksum",
    )
    classes = _record_set(
        "classes",
        [
            {
                "@type": "cr:Field",
                "@id": "classes/label",
                "name": "label",
                "dataType": "sc:Integer",
            },
            {"@type": "cr:Field", "@id": "classes/name", "name": "name", "dataType": "sc:Text"},
        ],
        "the class names, by label",
        key={"@id": "classes/label"},
        data=[{"classes/label": i, "classes/name": name} for i, name in enumerate(d.class_names)],
    )
    files, images = _images(d)
    title = f"{model['name']}:{model['version']} synthetic images"
    return {
        "@context": CONTEXT,
        "@type": "sc:Dataset",
        "name": title,
        "description": (
            f"{d.count} machine-generated images, {d.image_shape[1]}x{d.image_shape[2]}, "
            f"of {len(d.class_names)} classes, made by synthgen {d.kind} job {d.job_id} with "
            f"model version {model['name']}:{model['version']} ({model['engine']}). "
            "Provenance, sampling settings and evaluation figures are in README.md."
        ),
        "conformsTo": CONFORMS_TO,
        "citeAs": f"synthgen {d.kind} job {d.job_id}",
        "creator": {"@type": "sc:Organization", "name": "synthgen"},
        "datePublished": d.created_at.date().isoformat(),
        "license": SPDX.format(SPDX_IDS[license_id]) if license_id in SPDX_IDS else "other",
        "keywords": ["synthetic", "machine-generated", str(model["engine"])],
        "version": "1.0.0",
        "isAccessibleForFree": True,
        "distribution": [_file(d, MANIFEST, "text/csv"), *files],
        "recordSet": [classes, manifest, *([images] if images else [])],
    }
