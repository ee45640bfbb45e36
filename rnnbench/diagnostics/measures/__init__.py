"""The diagnostics' math, one module per instrument, named as the callback that uses it
(``rnnbench.diagnostics.gradient_norms`` reads ``measures.gradient_norms``, and so on). Every function
takes the layer stack (:class:`rnnbench.models.stack.LayerStack`) and works for any cell from its
``step`` and its parameters alone."""
