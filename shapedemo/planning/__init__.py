"""The pure planner: plan data, bucket edges, workloads, strategies, cost models, auto, tune.

No OpenVINO and no Gradio below this folder."""
