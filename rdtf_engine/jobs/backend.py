"""The ``Backend`` protocol: what runs a typed request. One method per request type, all alike:
``method(req, on_event, should_stop) -> result``.

The worker holds one backend and calls ``run_request``; the real one is ``EngineBackend`` (the engine proper,
imported on first use: torch takes seconds to import and the worker must say ``ready`` at once). The app's
tests swap in a module with the same functions (``tests/app/fake_backend.py``): a module with these functions
satisfies the protocol as well as an object does.
"""

from __future__ import annotations

from typing import Any, Protocol

from rdtf_engine.core.events import EventCallback, StopCallback
from rdtf_engine.core.requests import (
    OPS,
    CheckRequest,
    DeviceRequest,
    ExportRequest,
    GenerateRequest,
    ImportRequest,
    ModelsRequest,
    PackExportRequest,
    PackRequest,
    PrepareRequest,
    Request,
    TrainRequest,
)
from rdtf_engine.core.results import GenerateResult

# Backend method per worker op (``import`` is a Python keyword).
METHODS = {"generate": "generate", "train": "train", "import": "import_pack", "export": "export",
           "export-pack": "export_pack", "check": "check", "models": "models", "device": "device",
           "prepare": "prepare", "pack": "pack"}


class Backend(Protocol):
    def generate(self, req: GenerateRequest, on_event: EventCallback,
                 should_stop: StopCallback) -> GenerateResult | None: ...

    def train(self, req: TrainRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]: ...

    def import_pack(self, req: ImportRequest, on_event: EventCallback,
                    should_stop: StopCallback) -> dict[str, Any]: ...

    def export(self, req: ExportRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]: ...

    def export_pack(self, req: PackExportRequest, on_event: EventCallback,
                    should_stop: StopCallback) -> dict[str, Any]: ...

    def check(self, req: CheckRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]: ...

    def models(self, req: ModelsRequest, on_event: EventCallback,
               should_stop: StopCallback) -> list[dict[str, Any]]: ...

    def device(self, req: DeviceRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]: ...

    def prepare(self, req: PrepareRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]: ...

    def pack(self, req: PackRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]: ...


def run_request(backend: Backend, req: Request, on_event: EventCallback, should_stop: StopCallback) -> Any:
    """Call the backend's method for this request's type."""
    return getattr(backend, METHODS[OPS[type(req)]])(req, on_event, should_stop)


class EngineBackend:
    """The engine proper. Every import is local: the worker constructs this before anything heavy loads."""

    loaded = False  # whether a sticker was drawn or prepared: the engine is imported from then on

    def generate(self, req: GenerateRequest, on_event: EventCallback, should_stop: StopCallback) -> GenerateResult:
        from rdtf_engine.jobs import api

        return self._drawing(api.generate, req, (req.frames, req.size, req.gives_frames), on_event, should_stop)

    def prepare(self, req: PrepareRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]:
        from rdtf_engine.jobs import api

        return self._drawing(api.prepare, req, (req.frames, req.size, req.given), on_event, should_stop)

    def _drawing(self, run, req, shapes: tuple[int, int, bool], on_event: EventCallback, should_stop: StopCallback):
        """``run(req, …)``; the process's first drawing (``shapes``: frames, size, a frame given) has the OpenVINO
        graphs it compiled last time compiled on a thread while the engine imports (``graph_prefetch``)."""
        first = not self.loaded
        if first:
            from rdtf_engine.diffusion import graph_prefetch

            graph_prefetch.start_for_request(req.model, *shapes, req.device)
        try:
            return run(req, on_event, should_stop)
        finally:
            if first:
                self.loaded = True
                graph_prefetch.forget()

    def train(self, req: TrainRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]:
        from rdtf_engine.jobs.api import train

        return train(req, on_event, should_stop)

    def import_pack(self, req: ImportRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]:
        from rdtf_engine.datasets.dataset import import_pack

        return import_pack(req.path, req.out, int(req.size), on_event, should_stop, max_frames=int(req.max_frames))

    def export(self, req: ExportRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]:
        from rdtf_engine.platforms.export import export_clip

        return export_clip(req, on_event, should_stop)

    def export_pack(self, req: PackExportRequest, on_event: EventCallback,
                    should_stop: StopCallback) -> dict[str, Any]:
        from rdtf_engine.packs.export import run_pack_request

        return run_pack_request(req.folder, req.preset, req.out, req.check_only, on_event, should_stop)

    def check(self, req: CheckRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]:
        from rdtf_engine.platforms.check import check_file

        return check_file(req.path, req.preset)

    def models(self, req: ModelsRequest, on_event: EventCallback,
               should_stop: StopCallback) -> list[dict[str, Any]]:
        from rdtf_engine.jobs.api import list_models

        return list_models(req)

    def device(self, req: DeviceRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]:
        from rdtf_engine.jobs.api import device_info

        return device_info(req)

    def pack(self, req: PackRequest, on_event: EventCallback, should_stop: StopCallback) -> dict[str, Any]:
        from rdtf_engine.jobs.pack_mode import run_pack

        return run_pack(req, on_event, should_stop)
