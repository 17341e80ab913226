"""A paid call: hold credit, generate, attribute, charge, exactly once.

``inference`` runs one paid inference end to end for the CLI, the playground and agents;
``call`` is the state machine of a call with several choices (holds for every choice, settle
once, or settle later when the text is known), with no HTTP in it.
"""
