"""The ``dvv`` conflict resolver: dotted version vectors (work in progress)."""
