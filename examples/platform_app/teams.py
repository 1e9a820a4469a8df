"""Teams of an organisation and their members.

A team member has a membership of the organisation that names the team; removing
them from the team deletes that membership (an organisation-wide one stays).
Someone added to a team who is not in the organisation yet joins it too (an
organisation-wide ``MEMBER`` membership): their role lives there, and a team
membership carries none. Deleting a team deletes its memberships; anyone whose
only place in the organisation it was (as another program may leave them) keeps
an organisation-wide one (the platform's ``set_null`` policy): nobody loses the
organisation with a team, nobody is in it twice. Owners and admins
of the organisation manage its teams; every member sees them.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

import hutch
from hutch.plugins.platform import MembershipRole, Team, User

from .organisations import existing_user
from .organisations import show as show_organisation
from .web import (
    MANAGE,
    PAGE,
    SEE,
    PageNotFound,
    Platform,
    Posted,
    SignedIn,
    Site,
    act,
    checked_id,
    field,
    membership_role,
    organisation_for,
    render,
)

router = APIRouter()


@router.post("/organisations/{organisation_id}/teams")
def create(
    request: Request,
    organisation_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def create() -> str:
        organisation = organisation_for(p, user, organisation_id, MANAGE)
        team = p.repos.teams.create(name=field(data, "name"), organisation_id=organisation.id)
        return f"/teams/{team.id}"

    return act(p, create, lambda m, s: show_organisation(request, p, user, organisation_id, m, s))


@router.api_route("/teams/{team_id}", methods=PAGE)
def page(request: Request, team_id: str, user: SignedIn, p: Site) -> Response:
    return show(request, p, user, team_id)


@router.post("/teams/{team_id}/rename")
def rename(
    request: Request,
    team_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def rename() -> str:
        team = team_for(p, user, team_id, MANAGE)
        p.repos.teams.update(team.id, name=field(data, "name"))
        return f"/teams/{team.id}"

    return act(p, rename, lambda m, s: show(request, p, user, team_id, m, s))


@router.post("/teams/{team_id}/delete")
def delete(
    request: Request,
    team_id: str,
    _: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def delete() -> str:
        team = team_for(p, user, team_id, MANAGE)
        for membership in p.repos.memberships.find_by_team(team.id):
            places = p.repos.memberships.find(
                user_id=membership.user_id, organisation_id=team.organisation_id
            )
            if len(places) > 1:  # still in the organisation otherwise: no duplicate left
                p.repos.memberships.delete(membership.id)
        # The others become organisation-wide (the platform's set_null): their one place in it.
        p.repos.teams.delete(team.id)
        return f"/organisations/{team.organisation_id}"

    return act(p, delete, lambda m, s: show(request, p, user, team_id, m, s))


@router.post("/teams/{team_id}/members")
def add_member(
    request: Request,
    team_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def add() -> str:
        team = team_for(p, user, team_id, MANAGE)
        member = existing_user(p, field(data, "email"))
        places = p.repos.memberships.find(user_id=member.id, organisation_id=team.organisation_id)
        if any(place.team_id == team.id for place in places):
            raise hutch.IntegrityError(f"{member.email} is in {team.name} already.")
        if not any(place.team_id is None for place in places):  # new to the organisation
            p.repos.memberships.create(user_id=member.id, organisation_id=team.organisation_id)
        p.repos.memberships.create(
            user_id=member.id, organisation_id=team.organisation_id, team_id=team.id
        )
        return f"/teams/{team.id}"

    return act(p, add, lambda m, s: show(request, p, user, team_id, m, s))


@router.post("/teams/{team_id}/members/{membership_id}/remove")
def remove_member(
    request: Request,
    team_id: str,
    membership_id: str,
    _: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def remove() -> str:
        team = team_for(p, user, team_id, MANAGE)
        membership = p.repos.memberships.get(checked_id(membership_id))
        if membership is None or membership.team_id != team.id:
            raise PageNotFound()
        p.repos.memberships.delete(membership.id)
        return f"/teams/{team.id}"

    return act(p, remove, lambda m, s: show(request, p, user, team_id, m, s))


def show(
    request: Request,
    p: Platform,
    user: User,
    team_id: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    team = team_for(p, user, team_id)
    role = membership_role(p, user, team.organisation_id)
    memberships = p.repos.memberships.find_by_team(team.id)
    people = {person.id: person for person in p.repos.teams.get_members(team.id)}
    return render(
        request,
        "team.html",
        user=user,
        team=team,
        organisation=p.repos.organisations.get(team.organisation_id),
        memberships=memberships,
        people=people,
        may_manage=role in MANAGE,
        error=error,
        status=status,
    )


def team_for(p: Platform, user: User, team_id: str, may: tuple[MembershipRole, ...] = SEE) -> Team:
    """The team, if the user is a member of its organisation with a role in ``may``."""
    team = p.repos.teams.get(checked_id(team_id))
    if team is None:
        raise PageNotFound()
    organisation_for(p, user, team.organisation_id, may)
    return team
