"""OpenVINO at run time: devices, compiling shapes, the blob cache and budgets, running plans, timing."""
