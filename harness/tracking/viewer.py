"""The MLflow app `harness ui` serves (MLflow's own server, given as an app plugin: `mlflow ui --app-name
harness`): every page opens in model-training mode.

MLflow 3.17's UI chooses between its GenAI and model-training modes from the address (`?workflowType=…`), else
from the browser's local storage (`mlflow.workflowType_v1`), else GenAI; it no longer reads an experiment's
`mlflow.experimentKind` tag, and no server setting changes the default. So an experiment's plain address, the
home page's link to it, a breadcrumb or a run link written in a description open the traces dashboard. This app
is MLflow's, with one line added to the page it serves: before MLflow's own script runs, the stored mode is
model training. Every experiment a harness store holds is one (the harness logs no traces); a colleague who
switches to GenAI keeps it until the page is loaded anew."""

from __future__ import annotations

import json

WORKFLOW_KEY = "mlflow.workflowType_v1"
MODEL_TRAINING = "machine_learning"
SCRIPT = f"<script>localStorage.setItem({json.dumps(WORKFLOW_KEY)}, {json.dumps(json.dumps(MODEL_TRAINING))})</script>"


def with_model_training(page: bytes) -> bytes:
    """MLflow's index.html with the mode stored before anything else runs (once, in <head>)."""
    script = SCRIPT.encode()
    if script in page or b"<head>" not in page:
        return page
    return page.replace(b"<head>", b"<head>" + script, 1)


def create_app():
    """The ASGI app uvicorn runs (a factory, as MLflow's plugins are): MLflow's FastAPI app over its Flask app,
    the Flask app answering its index page with `with_model_training`."""
    from mlflow.server import app as flask_app  # the server's modules: only in the viewer's own process
    from mlflow.server.fastapi_app import create_fastapi_app

    @flask_app.after_request
    def model_training_by_default(response):
        if response.mimetype == "text/html" and response.status_code == 200:
            response.direct_passthrough = False
            response.set_data(with_model_training(response.get_data()))
        return response

    return create_fastapi_app(flask_app)
