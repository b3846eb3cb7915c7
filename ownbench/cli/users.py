"""`ownbench users add|list|role|remove`: who may sign in to the app, and as what (owner, reviewer, annotator)."""
from __future__ import annotations

import typer

ROLE_HELP = "owner (everything, manages people), reviewer (agreement, adjudication, rankings, runs) or annotator."
NAME_HELP = "The identity the person signs in with: the e-mail claim under OIDC, the proxy header's value."


def register(app: typer.Typer) -> None:
    users = typer.Typer(help="People and their roles.", no_args_is_help=True, rich_markup_mode=None)
    app.add_typer(users, name="users")

    @users.command("add")
    def add_cmd(name: str = typer.Argument(..., help=NAME_HELP),
                role: str = typer.Option("annotator", "--role", help=ROLE_HELP)) -> None:
        """Add a person with a role (the first owner of a deployment comes from here or OWNBENCH_OWNERS)."""
        from analysis import people
        from ownbench.cli.common import console, session

        with session() as s:
            p = people.add(s, name, role)
        console.print(f"added {p.name} as {p.role}", highlight=False)

    @users.command("list")
    def list_cmd(all_: bool = typer.Option(False, "--all", help="Also list removed people (their labels stay)."),
                 as_json: bool = typer.Option(False, "--json", help="Print machine-readable JSON.")) -> None:
        """Everyone with a role."""
        from analysis import people
        from ownbench.cli.common import console, print_json, session

        with session() as s:
            rows = [{"name": p.name, "role": p.role or "removed", "since": p.created_at.isoformat()}
                    for p in people.everyone(s, include_removed=all_)]
        if as_json:
            print_json(rows)
            return
        if not rows:
            console.print("nobody yet: `ownbench users add NAME --role owner` adds the first owner")
        for r in rows:
            console.print(f"{r['role']:<10} {r['name']}", highlight=False, markup=False)

    @users.command("role")
    def role_cmd(name: str = typer.Argument(..., help=NAME_HELP),
                 role: str = typer.Argument(..., help=ROLE_HELP)) -> None:
        """Change a person's role (the last owner cannot stop being one)."""
        from analysis import people
        from ownbench.cli.common import console, session

        with session() as s:
            p = people.set_role(s, name, role)
        console.print(f"{p.name} is now {p.role}", highlight=False)

    @users.command("remove")
    def remove_cmd(name: str = typer.Argument(..., help=NAME_HELP)) -> None:
        """Take a person's role away: they can no longer sign in; their labels stay, attributed to them."""
        from analysis import people
        from ownbench.cli.common import console, session

        with session() as s:
            p = people.remove(s, name)
        console.print(f"removed {p.name}; their labels stay", highlight=False)
