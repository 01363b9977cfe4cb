"""The main job behind ``gclandscape run``: its context, steps, output folder and runner.

Only the standard library is imported at module level here and in every submodule, so that
``gclandscape --help`` stays fast; scanpy, torch and matplotlib load inside the steps.
"""
