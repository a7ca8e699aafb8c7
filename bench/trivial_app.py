"""The floor for the round-trip rows of bench/serve_speed.py: a one-function Gradio app with a
queued /predict API endpoint that returns a small dict, served the way app.py serves.

    GRADIO_SERVER_PORT=7861 python bench/trivial_app.py
"""

import os

import gradio as gr


def predict(name: str, prior: str | dict = "equal") -> dict:
    """Echo: no model, so what is left is Gradio and its client."""
    return {"name": name, "language": "Japanese", "confidence": 0.97}


if __name__ == "__main__":
    with gr.Blocks() as demo:
        gr.api(predict, api_name="predict", queue=False)  # as app.py: /run/predict, and /call/predict
    demo.queue(default_concurrency_limit=4, max_size=128).launch(
        server_name="127.0.0.1", server_port=int(os.environ["GRADIO_SERVER_PORT"])
    )
