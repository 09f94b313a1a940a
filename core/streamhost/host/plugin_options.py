"""The plugins' config tables checked against the options they declare, with the file and line of each problem.

A provider's ``[providers.NAME]`` and the provider's keys of its ``[models."NAME/MODEL"]`` tables are
checked when it loads: any problem stops that plugin (reported like any load error, every problem at
once, in file order). ``[fetch]`` is shared by every fetcher: each checks the values of the keys it
declares when it loads, and a key no loaded fetcher declares is a warning once all have loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..errors import ConfigError
from ..fetchers import Fetcher
from ..options import OTHER_KEYS, CheckedOptions, Option, check_options
from ..providers import Provider
from .config import MODEL_KEYS, SECRET_KEY, Config, did_you_mean, masked

MASK = "****"


def configure(item: Provider | Fetcher, config: Config) -> None:
    """Check ``item``'s tables in ``config`` against its declarations, then hand it its table.

    :raises ConfigError: every problem of its tables, one per line in file order, each with file, line and
        the close known key; or the plugin's own ConfigError from ``configure``, with the table's file and line.
    """
    section, table = table_of(item, config)
    problems: list[tuple[int, str]] = []
    if item.declared_options is not None:
        checked = check_options(item.declared_options, table, section)
        problems += _errors(checked, config)
        if isinstance(item, Provider):  # [fetch] is shared: its other keys may be another fetcher's
            problems += [(config.line_of(f"{table_name}.{key}") or 0, config.unknown_key(table_name, key, known))
                         for table_name, key, known in checked.unknown]
    if isinstance(item, Provider) and item.declared_model_options is not None:
        for model, options in model_tables(item, config).items():
            problems += _errors(check_options(item.declared_model_options, options, f'models."{model}"'), config)
    if problems:
        raise ConfigError("\n".join(message for _, message in sorted(problems, key=lambda problem: problem[0])))
    try:
        item.configure(table)
    except ConfigError as exc:
        where = config.locate(section)
        raise ConfigError(f"{where}: {exc.message}" if where else exc.message) from None


def warnings(providers: Mapping[str, Provider], fetchers: Mapping[str, Fetcher], config: Config) -> list[str]:
    """Keys of the shared tables that nothing loaded declares, with file, line and the close known key.

    ``[fetch]`` is judged only when every loaded fetcher declares its options (one that does not may read
    any key); a ``[models."NAME/MODEL"]`` table only when its provider declares model options.
    """
    found: list[tuple[int, str]] = []
    declared = [fetcher.declared_options for fetcher in fetchers.values()]
    if declared and all(options is not None for options in declared):
        known = {option.name for options in declared for option in options or ()}
        if OTHER_KEYS not in known:
            found += [(config.line_of(f"fetch.{key}") or 0, config.unknown_key("fetch", key, known))
                      for key in config.fetch if key not in known]
    for provider in providers.values():
        if provider.declared_model_options is None:
            continue
        known = {option.name for option in provider.declared_model_options} | MODEL_KEYS
        if OTHER_KEYS in known:
            continue
        for model, options in model_tables(provider, config).items():
            section = f'models."{model}"'
            # A near miss of a host key (`streming`) was reported when the file was read.
            found += [(config.line_of(f"{section}.{key}") or 0, config.unknown_key(section, key, known))
                      for key in options if key not in known and not did_you_mean(key, MODEL_KEYS)]
    return [message for _, message in sorted(found, key=lambda item: item[0])]


def table_of(item: Provider | Fetcher, config: Config) -> tuple[str, dict[str, Any]]:
    """The dotted name of the table ``item`` is configured from, and that table as the file has it."""
    if isinstance(item, Provider):
        return f"providers.{item.name}", config.providers.get(item.name, {})
    return "fetch", config.fetch


def model_tables(provider: Provider, config: Config) -> dict[str, dict[str, Any]]:
    """``[models."NAME/MODEL"]`` tables of this provider: full model name -> the keys that go to the provider."""
    prefix = f"{provider.name}/"
    return {model: config.model_options(model) for model in config.models if model.startswith(prefix)}


def listing(providers: Mapping[str, Provider], fetchers: Mapping[str, Fetcher], config: Config) -> list[dict[str, Any]]:
    """Every option the loaded plugins declare, with the value in effect (secrets masked), for ``config show``.

    One entry per option: ``section``, ``plugin`` (the provider or fetcher name), ``name``, ``type``,
    ``default``, ``allowed``, ``description``, ``value`` and ``set`` (whether the config file sets it). For a
    model option, ``value`` maps each model whose table sets it to its value.
    """
    rows = []
    for item in [*providers.values(), *fetchers.values()]:
        section, table = table_of(item, config)
        for option in _shown(item.declared_options):
            value = _masked(option, item.options.get(option.name))
            rows.append(_row(section, item.name, option, value, option.name in table))
        if isinstance(item, Provider):
            tables = model_tables(item, config)
            for option in _shown(item.declared_model_options):
                value = {model: _masked(option, options[option.name])
                         for model, options in tables.items() if option.name in options}
                rows.append(_row(f'models."{item.name}/MODEL"', item.name, option, value, bool(value)))
    return rows


def describe(rows: list[dict[str, Any]]) -> list[str]:
    """``listing`` as text lines: a ``[section]  (plugin)`` heading, then ``name = value`` with what it is."""
    lines: list[str] = []
    heading = None
    for row in rows:
        if (row["section"], row["plugin"]) != heading:
            heading = (row["section"], row["plugin"])
            lines += [""] if lines else []
            lines.append(f"[{row['section']}]  ({row['plugin']})")
        value = row["value"]
        if row["section"].startswith("models."):  # the value of each model table that sets it
            shown = ", ".join(f'{toml_value(each)} in models."{model}"' for model, each in value.items()) or "unset"
        else:
            shown = toml_value(value)
        facts = [row["type"], row["allowed"]]
        if row["set"]:
            facts.insert(1, f"default {toml_value(row['default'])}")
        where = "set in the file" if row["set"] else "default"
        lines.append(f"{row['name']} = {shown}  ({where}; {', '.join(filter(None, facts))})")
        if row["description"]:
            lines.append(f"    {row['description']}")
    return lines


def _errors(checked: CheckedOptions, config: Config) -> list[tuple[int, str]]:
    located = []
    for dotted, problem in checked.errors:
        where = config.locate(dotted)
        located.append((config.line_of(dotted) or 0, f"{where + ': ' if where else ''}{dotted} {problem}"))
    return located


def _shown(declared: tuple[Option, ...] | None) -> list[Option]:
    """The options worth listing: neither refused ones nor the ``"*"`` stand-in."""
    return [option for option in declared or () if not option.refused and option.name != OTHER_KEYS]


def _masked(option: Option, value: Any) -> Any:
    if value is not None and (option.secret or SECRET_KEY.search(option.name.lower())):
        return MASK
    return masked(value, option.name)


def _row(section: str, plugin: str, option: Option, value: Any, is_set: bool) -> dict[str, Any]:
    return {"section": section, "plugin": plugin, "name": option.name, "type": option.type_name,
            "default": option.default, "allowed": option.allowed, "description": option.description,
            "value": value, "set": is_set}


def toml_value(value: Any) -> str:
    """A value as TOML would write it."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(item) for item in value) + "]"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{key} = {toml_value(item)}" for key, item in value.items()) + " }" if value else "{}"
    return str(value)
