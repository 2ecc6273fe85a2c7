"""The command palette provider: every binding of the current mode and the app, plus screen commands."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider


class TrtCommands(Provider):
    def _commands(self):
        app = self.app
        screen = self.screen
        for where, binding in app.all_bindings(current=screen):
            target = app if where == "global" else screen
            help_text = f"{where} · keys: {app.keys_for(binding)}"
            yield binding.description, help_text, partial(app.run_action, binding.action, target)
        palette = getattr(screen, "palette_commands", None)
        if palette is not None:
            for command in palette():
                yield command.title, command.help, command.callback

    async def discover(self) -> Hits:
        for title, help_text, callback in self._commands():
            yield DiscoveryHit(title, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, help_text, callback in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), callback, help=help_text)
