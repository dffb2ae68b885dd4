"""The engine's task kinds, one module each, as parts of ai_host.engine.Engine (mixins: they use
the engine's routing, admission, job table and emit, and keep no state of their own).

    chat.py      explain, refactor / generate, the model list: chat requests streamed to a float
    complete.py  ghost text: the FIM window and request, the suggestion stream, prefetch
    warm.py      ghost text's warm-ups (the server reads a prompt ahead) and job groups
"""
