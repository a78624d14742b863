"""The output surface: a pyglet window with a moderngl context, or a headless EGL context.

:class:`LiveWindow` — windowed or fullscreen on a chosen screen, vsync, cursor hidden in fullscreen, resizable
(the pipeline keeps the aspect ratio), F toggles fullscreen, H/Tab the overlay. Escape never ends a fullscreen show
by accident: it takes two presses within 1 s, or holding it for 1 s (one press when windowed).

:class:`HeadlessSurface` — no window (``--headless``): an EGL standalone context for GPU servers and benchmarks.

Both expose ``ctx`` (moderngl), ``should_close``, ``framebuffer_size()``, ``poll(now_s)``, ``flip()``, ``close()``.
"""

from __future__ import annotations


from vj.clock import now_s
from vj.errors import VJError

#: seconds within which a second Escape quits, or for which holding Escape quits (fullscreen)
ESCAPE_WINDOW_S = 1.0


class HeadlessSurface:
    """No window: a standalone EGL context (no X server needed).

    Raises:
        VJError: no EGL context could be created (names the Debian packages).
    """

    overlay = None
    fullscreen = False

    def __init__(self):
        import moderngl

        try:
            self.ctx = moderngl.create_standalone_context(backend="egl")
        except Exception as exc:  # noqa: BLE001
            raise VJError(f"--headless needs EGL (Debian: libegl1 libgl1-mesa-dri): {exc}") from None
        self.should_close = False
        self.message = ""

    def framebuffer_size(self) -> tuple[int, int]:
        return (0, 0)

    def poll(self, now_s: float) -> None:
        pass

    def screen_fbo(self):
        return None

    def flip(self) -> None:
        self.ctx.finish()

    def close(self) -> None:
        self.ctx.release()


class LiveWindow:
    """The show's window and its GL context.

    Args:
        size: window size when not fullscreen (width, height) [px].
        fullscreen: start fullscreen.
        screen: index of the screen (monitor) to open on (pyglet's order; 0 = first).
        vsync: wait for the display's vertical blank on flip.
        title: window title.

    Raises:
        VJError: no display to open a window on, or ``screen`` out of range.
    """

    def __init__(self, size=(1280, 720), fullscreen=False, screen=None, vsync=True, title="vj"):
        import moderngl
        import pyglet

        try:
            display = pyglet.display.get_display()
            screens = display.get_screens()
        except Exception as exc:  # noqa: BLE001 — no X server / DISPLAY unset
            raise VJError(f"cannot open a window ({exc}); set DISPLAY, or use --headless") from None
        if screen is not None and not 0 <= int(screen) < len(screens):
            raise VJError(f"--screen {screen}: there are {len(screens)} screen(s) (0..{len(screens) - 1})")
        self.screen = screens[int(screen or 0)]
        self.windowed_size = (int(size[0]), int(size[1]))
        config = pyglet.gl.Config(double_buffer=True, major_version=3, minor_version=3)
        try:
            self.window = pyglet.window.Window(
                width=self.windowed_size[0], height=self.windowed_size[1], caption=title, resizable=True,
                vsync=vsync, fullscreen=fullscreen, screen=self.screen, config=config,
            )
        except Exception:  # noqa: BLE001 — a driver without a 3.3 core config: take its default
            self.window = pyglet.window.Window(
                width=self.windowed_size[0], height=self.windowed_size[1], caption=title, resizable=True,
                vsync=vsync, fullscreen=fullscreen, screen=self.screen,
            )
        if not fullscreen:  # centre on the chosen screen
            s = self.screen
            self.window.set_location(s.x + max((s.width - self.windowed_size[0]) // 2, 0),
                                     s.y + max((s.height - self.windowed_size[1]) // 2, 0))
        self.window.set_mouse_visible(not fullscreen)
        self.window.switch_to()  # its GL context current on this thread: moderngl attaches to the current one
        self.ctx = moderngl.create_context()
        self.should_close = False
        self.message = ""  # transient hint shown in the overlay ("press Esc again to quit")
        self._message_until = 0.0
        self._esc_pressed_s: float | None = None  # last press instant
        self._esc_down_s: float | None = None  # held since
        self.window.push_handlers(on_key_press=self._on_key_press, on_key_release=self._on_key_release,
                                  on_close=self._on_close)
        from vj.display.overlay import Overlay

        self.overlay = Overlay(self.window)

    # -- state ---------------------------------------------------------------------------------------------
    @property
    def fullscreen(self) -> bool:
        return bool(self.window.fullscreen)

    def set_fullscreen(self, on: bool) -> None:
        """Enter or leave fullscreen on the chosen screen; the cursor is hidden while fullscreen."""
        if on == self.fullscreen:
            return
        if on:
            self.window.set_fullscreen(True, screen=self.screen)
        else:
            self.window.set_fullscreen(False, width=self.windowed_size[0], height=self.windowed_size[1])
        self.window.set_mouse_visible(not on)

    def framebuffer_size(self) -> tuple[int, int]:
        return tuple(self.window.get_framebuffer_size())

    def screen_fbo(self):
        return self.ctx.screen

    def _hint(self, text: str, now_s: float, for_s: float = ESCAPE_WINDOW_S) -> None:
        self.message = text
        self._message_until = now_s + for_s

    # -- events ----------------------------------------------------------------------------------------------
    def _on_close(self):
        self.should_close = True
        return True  # we close it ourselves, after the threads are joined

    def request_escape(self, now_s: float) -> None:
        """An Escape press at ``now_s`` [s]: quits when windowed; in fullscreen only a second press within 1 s."""
        if not self.fullscreen:
            self.should_close = True
        elif self._esc_pressed_s is not None and now_s - self._esc_pressed_s <= ESCAPE_WINDOW_S:
            self.should_close = True
        else:
            self._hint("press Esc again (or hold it) to quit", now_s)
        self._esc_pressed_s = now_s
        self._esc_down_s = now_s

    def _on_key_press(self, symbol, modifiers):
        from pyglet.window import key

        now = now_s()
        if symbol == key.ESCAPE:
            self.request_escape(now)
            return True  # pyglet's default handler would close the window on Escape
        if symbol == key.F:
            self.set_fullscreen(not self.fullscreen)
            return True
        if symbol in (key.H, key.TAB):
            self.overlay.visible = not self.overlay.visible
            return True
        return None  # every other key is vj.control.keyboard's (pushed above this handler)

    def _on_key_release(self, symbol, modifiers):
        from pyglet.window import key

        if symbol == key.ESCAPE:
            self._esc_down_s = None

    def poll(self, now_s: float) -> None:
        """Dispatch window events; quit on an Escape held for 1 s; expire hints."""
        self.window.dispatch_events()
        if self._esc_down_s is not None and now_s - self._esc_down_s >= ESCAPE_WINDOW_S:
            self.should_close = True
        if self.message and now_s > self._message_until:
            self.message = ""

    def flip(self) -> None:
        self.window.flip()

    def close(self) -> None:
        """Delete the overlay and close the window (drains pending GL errors first: pyglet checks them)."""
        try:
            self.overlay.delete()
        except Exception:  # noqa: BLE001
            pass
        _ = self.ctx.error  # reading clears GL's error flag, which pyglet's close would raise on
        try:
            self.window.close()
        except Exception:  # noqa: BLE001 — a driver complaining at exit must not turn a clean exit into a crash
            pass
