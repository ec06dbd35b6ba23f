"""``gpu-lol notebook`` / ``code`` / ``forward``: interactive work on a cluster or host.

See :mod:`gpu_lol.machine.notebook` for the tunnel, the Jupyter server's life and the VS Code command.
"""

from __future__ import annotations

import sys

import click

_CTX = {"help_option_names": ["-h", "--help"]}


def _wait(tunnels, target_name: str, after: str) -> int:
    """Keep the tunnel(s) open until Ctrl-C (exit 0) or until one drops (exit 1)."""
    import time

    from gpu_lol.console import info

    try:
        while all(t.alive() for t in tunnels):
            time.sleep(0.5)
    except KeyboardInterrupt:
        for t in tunnels:
            t.close()
        info(f"\ntunnel closed. {after}")
        return 0
    for t in tunnels:
        t.close()
    info(f"the tunnel to {target_name} dropped (network or the machine went away). {after}")
    return 1


@click.command("notebook", context_settings=_CTX)
@click.argument("name", required=False)
@click.option("--port", type=int, metavar="N", help="Local port (default 8888, or a free one if it is taken).")
@click.option("--install", is_flag=True, help="pip install jupyterlab on the machine if it is missing.")
@click.option("--open", "open_browser", is_flag=True, help="Open the URL in the local browser.")
@click.option("--restart", is_flag=True, help="Stop the running server (and its kernels) and start a new one.")
@click.option("--stop", is_flag=True, help="Stop the Jupyter server gpu-lol started on the machine, and exit.")
def notebook_command(name: str | None, port: int | None, install: bool, open_browser: bool,
                     restart: bool, stop: bool) -> int:
    """Jupyter Lab on the machine, in the workdir, reached through an SSH tunnel.

    \b
    Starts jupyter-lab on the machine (bound to its 127.0.0.1 only, detached so it outlives
    the tunnel), forwards it to a local port and prints the local URL with its token.
    Ctrl-C closes the tunnel; the server and its kernels keep running, and
    `gpu-lol notebook` again reconnects to them. --stop stops the server.
    """
    from gpu_lol.console import confirm, info
    from gpu_lol.errors import OperationError, UsageError
    from gpu_lol.launch import state
    from gpu_lol.machine import notebook

    if stop and (restart or install or open_browser):
        raise UsageError("--stop stops the server; it takes no other option", None)
    if port is not None:
        notebook.check_port(port, "--port")
    target = state.resolve(name)
    if stop:
        if notebook.stop_jupyter(target):
            info(f"stopped Jupyter Lab on {target.name}")
        else:
            info(f"no Jupyter Lab started by gpu-lol is running on {target.name}")
        return 0
    info(f"checking Jupyter Lab on {target.name} ...")
    server, installed = notebook.status(target)
    if server is not None and restart:
        notebook.stop_jupyter(target)
        server = None
    if server is None:
        if not installed:
            where = "its virtualenv" if target.kind == state.KIND_HOST and target.extra.get("venv") else "its Python"
            if not install:
                if sys.stdin.isatty() and confirm(
                        f"Jupyter Lab is not installed on {target.name}. Install it with pip into {where}?",
                        default=False):
                    install = True
                else:
                    raise OperationError(
                        f"Jupyter Lab (jupyter-lab) is not installed on {target.name}",
                        f"`gpu-lol notebook {target.name} --install` installs it with pip into {where}; "
                        "or add jupyterlab to the requirements in .gpu-lol.yaml")
            notebook.install(target)
        info(f"starting Jupyter Lab on {target.name} in {notebook.remote.workdir_of(target)} ...")
        server = notebook.start_jupyter(target)
    else:
        info(f"reconnecting to the Jupyter Lab already running on {target.name} (pid {server.pid})")
    local = port if port is not None else notebook.free_local_port(notebook.DEFAULT_LOCAL_PORT)
    tunnel = notebook.forward(target, server.port, local)
    url = notebook.notebook_url(tunnel.local_port, server.token)
    try:
        code = notebook.wait_http(f"http://127.0.0.1:{tunnel.local_port}/api/status?token={server.token}")
    except OperationError:
        tunnel.close()
        raise
    if code >= 400:
        tunnel.close()
        raise OperationError(f"Jupyter Lab on {target.name} answered HTTP {code} through the tunnel",
                             f"restart it: gpu-lol notebook {target.name} --restart")
    # The token is a password: it goes to stdout only (never to a log or stderr).
    click.echo(f"Jupyter Lab on {target.name}: {url}")
    sys.stdout.flush()
    if open_browser:
        import webbrowser

        webbrowser.open(url)
    info(f"forwarding 127.0.0.1:{tunnel.local_port} -> {target.name}:{server.port}; Ctrl-C closes the tunnel")
    return _wait([tunnel], target.name,
                 f"Jupyter Lab keeps running on {target.name} (kernels keep their state): "
                 f"`gpu-lol notebook {target.name}` reconnects, `--stop` stops it.")


@click.command("code", context_settings=_CTX)
@click.argument("name", required=False)
@click.option("--print", "print_only", is_flag=True, help="Print the command instead of running it.")
@click.option("--editor", default="code", show_default=True, metavar="EXE",
              help="The VS Code command (code, code-insiders, codium, cursor).")
@click.option("-y", "--yes", is_flag=True, help="Add the Include line to ~/.ssh/config without asking.")
def code_command(name: str | None, print_only: bool, editor: str, yes: bool) -> int:
    """Open the workdir in VS Code over Remote-SSH (code --remote ssh-remote+NAME PATH).

    VS Code reads ~/.ssh/config, so the machine must be reachable by name from there: clusters
    are (SkyPilot adds an Include line at launch); for a host gpu-lol writes a config under
    $GPU_LOL_HOME/ssh/editors/ and offers to add one Include line to the top of ~/.ssh/config.
    """
    import shlex
    import subprocess

    from gpu_lol.console import confirm, info
    from gpu_lol.errors import OperationError, UsageError
    from gpu_lol.launch import state
    from gpu_lol.machine import notebook

    target = state.resolve(name)
    exe = None if print_only else notebook.find_code(editor)
    if exe is None and not print_only:
        raise OperationError(
            f"`{editor}` (VS Code's command-line launcher) is not on PATH",
            "install VS Code and its Remote - SSH extension (code --install-extension "
            "ms-vscode-remote.remote-ssh); on macOS run 'Shell Command: Install code command in PATH' "
            f"from the command palette. Or connect by hand: `gpu-lol code {target.name} --print` shows "
            "the host and folder to open with Remote-SSH: Connect to Host")
    if target.kind == state.KIND_HOST:
        notebook.write_editor_config(target)
    line = notebook.include_line(target)
    if not notebook.user_config_includes(line):
        if yes or (sys.stdin.isatty() and confirm(
                f"VS Code reads only ~/.ssh/config; add `{line}` to its top so it finds {target.name}?",
                default=True)):
            path = notebook.add_include(line)
            info(f"added `{line}` to {path} (the old file is kept as {path.name}.gpu-lol.bak)")
        elif not print_only:
            raise UsageError(f"~/.ssh/config does not include the config that names {target.name}",
                             f"add this line at its top: {line}  (or run again with --yes)")
    path = notebook.remote_workdir_absolute(target)
    argv = notebook.code_command(notebook.vscode_alias(target), path, editor)
    if print_only:
        click.echo(" ".join(shlex.quote(p) for p in argv))
        return 0
    info(f"opening {target.name}:{path} in VS Code")
    try:
        return subprocess.run([exe, *argv[1:]], stdin=subprocess.DEVNULL).returncode
    except OSError as exc:
        raise OperationError(f"cannot run {exe}: {exc.strerror or exc}", None) from None
