"""One way for a route to get what it works with: the Annotated dependencies of api/deps.py
(SessionDep, TenantDep, StorageDep, SettingsDep, HubDep, DispatcherDep, PreferWaitDep,
OwnedJobDep). No route reads ``request.app.state``, calls ``get_settings()``, builds
Settings or a store, keeps a module global, or writes ``Depends(...)`` inline."""

from __future__ import annotations

import ast
import importlib
import typing
from pathlib import Path

import pytest
from fastapi import APIRouter
from fastapi.routing import APIRoute

from api import deps, metrics

ROOT = Path(__file__).resolve().parents[3]
ROUTE_MODULES = [
    *sorted((ROOT / "api" / "routes").glob("[!_]*.py")),
    ROOT / "api" / "metrics.py",
]
FORBIDDEN_CALLS = {"Depends", "Security", "get_settings", "Settings", "from_settings"}


def other_ways(source: str) -> list[str]:
    """Each place in ``source`` that gets a dependency another way, as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute) and node.attr == "state":
            if isinstance(node.value, ast.Attribute) and node.value.attr == "app":
                found.append(f"{node.lineno}: app.state")
        elif isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
            if name in FORBIDDEN_CALLS:
                found.append(f"{node.lineno}: {name}()")
        elif isinstance(node, ast.ImportFrom) and node.module == "core.config":
            found += [f"{node.lineno}: import {a.name}" for a in node.names if a.name != "Settings"]
        elif isinstance(node, ast.Global):
            found.append(f"{node.lineno}: global {', '.join(node.names)}")
    return found


@pytest.mark.parametrize("path", ROUTE_MODULES, ids=lambda p: p.name)
def test_route_modules_get_dependencies_only_from_api_deps(path):
    assert other_ways(path.read_text()) == []


@pytest.mark.parametrize(
    "planted",
    [
        "def f(request):\n    return request.app.state.dispatcher\n",
        "from fastapi import Depends\ndef f(x=Depends(g)):\n    pass\n",
        "from core.config import get_settings\nget_settings()\n",
        "from core.storage import from_settings\nstore = from_settings(s)\n",
        "_cache = None\ndef f():\n    global _cache\n",
    ],
)
def test_a_planted_other_way_is_found(planted):
    assert other_ways(planted) != []


def _alias_callables() -> set[object]:
    """The callables behind api/deps.py's Annotated aliases."""
    found = set()
    for value in vars(deps).values():
        if typing.get_origin(value) is typing.Annotated:
            found |= {m.dependency for m in typing.get_args(value)[1:] if hasattr(m, "dependency")}
    return found


def _dependencies(dependant) -> list:
    return [d for sub in dependant.dependencies for d in (sub, *_dependencies(sub))]


def test_every_route_dependency_is_one_of_the_annotated_aliases():
    allowed = _alias_callables()
    assert {deps.get_session, deps.get_tenant, deps.get_settings, deps.get_storage} <= allowed
    modules = [importlib.import_module(f"api.routes.{p.stem}") for p in ROUTE_MODULES[:-1]]
    routes = [
        route
        for module in (*modules, metrics)
        for route in getattr(module, "router", APIRouter()).routes
        if isinstance(route, APIRoute)
    ]
    assert len(routes) > 30
    odd = {
        f"{route.path} {route.name}: {getattr(d.call, '__qualname__', d.call)}"
        for route in routes
        for d in _dependencies(route.dependant)
        if d.call not in allowed
    }
    assert odd == set()
