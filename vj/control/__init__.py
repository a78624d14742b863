"""Control: the parameter registry (:mod:`vj.control.params`) and the surfaces that drive it
(OSC, MIDI, keyboard, presets, tempo)."""
