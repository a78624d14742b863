"""Control: the parameter registry and the surfaces that drive it from the booth.

One concern per module:

* :mod:`vj.control.params` — the thread-safe registry of the live parameters (declared in :mod:`vj.parameters`)
  applied once per frame; the class palette with its crossfade state.
* :mod:`vj.control.osc_router` — the ``/vj/...`` OSC address space and its action table, pure logic;
  :mod:`vj.control.osc_pattern` — OSC 1.0 address patterns matched without backtracking; :mod:`vj.control.osc` —
  the UDP server (own thread, allowlist, bundle framing, budgets, rate-limited drops) and feedback to a tablet.
* :mod:`vj.control.midi` — MIDI bindings, learn, soft takeover, encoders, clock; :mod:`vj.control.midi_port` —
  opening a port (one notice when there is no MIDI).
* :mod:`vj.control.presets` — preset files, validation, the bank, saving; :mod:`vj.control.crossfade` — switching
  with a timed crossfade, quantised to the beat clock.
* :mod:`vj.control.tempo` — the beat clock (tap, follow the analysis, MIDI clock).
* :mod:`vj.control.keyboard` — the window's key bindings; :mod:`vj.control.surfaces` — ``vj live``'s flags and
  start-up of all of the above.
* :mod:`vj.control.ratelog` — counting ignored input with at most one log line per interval; library warnings into
  the log; :mod:`vj.control.budget` — messages and CPU time per second an input may take.
"""
