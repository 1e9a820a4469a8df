"""Organisations: the list of yours, one organisation's page, its members.

Whoever creates an organisation owns it and is its first member (``OWNER``).
Every member sees it; members (not viewers) work on its projects and resources;
owners and admins manage its name, teams and members, and only the owner makes
(or removes) another owner. Removing someone's organisation-wide membership
removes them from its teams as well. Only the owner deletes it, and only once
its teams are gone (they hold people's memberships, so the app asks for that
step by hand rather than cascade it).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

import hutch
from hutch.plugins.platform import MembershipRole, User

from .web import (
    MANAGE,
    PAGE,
    WORK,
    NotAllowed,
    PageNotFound,
    Platform,
    Posted,
    SignedIn,
    Site,
    act,
    checked_id,
    choice,
    field,
    membership_role,
    organisation_for,
    render,
)

router = APIRouter()


@router.api_route("/organisations", methods=PAGE)
def list_page(request: Request, user: SignedIn, p: Site) -> Response:
    return show_list(request, p, user)


@router.post("/organisations")
def create(
    request: Request,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    name = field(data, "name")

    def create() -> str:
        organisation = p.repos.organisations.create(name=name, owner_id=user.id)
        p.repos.memberships.create(
            user_id=user.id, organisation_id=organisation.id, role=MembershipRole.OWNER
        )
        return f"/organisations/{organisation.id}"

    return act(p, create, lambda message, status: show_list(request, p, user, message, status))


@router.api_route("/organisations/{organisation_id}", methods=PAGE)
def page(
    request: Request,
    organisation_id: str,
    user: SignedIn,
    p: Site,
) -> Response:
    return show(request, p, user, organisation_id)


@router.post("/organisations/{organisation_id}/rename")
def rename(
    request: Request,
    organisation_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def rename() -> str:
        organisation = organisation_for(p, user, organisation_id, MANAGE)
        p.repos.organisations.update(organisation.id, name=field(data, "name"))
        return f"/organisations/{organisation.id}"

    return act(p, rename, lambda m, s: show(request, p, user, organisation_id, m, s))


@router.post("/organisations/{organisation_id}/delete")
def delete(
    request: Request,
    organisation_id: str,
    _: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def delete() -> str:
        organisation = organisation_for(p, user, organisation_id)
        if organisation.owner_id != user.id:
            raise NotAllowed("Only the organisation's owner may delete it.")
        teams = p.repos.organisations.get_teams(organisation.id)
        if teams:
            names = ", ".join(team.name for team in teams)
            raise hutch.IntegrityError(
                f"{organisation.name} still has teams ({names}): delete them first."
            )
        p.repos.organisations.delete(organisation.id)  # its projects and memberships go too
        return "/organisations"

    return act(p, delete, lambda m, s: show(request, p, user, organisation_id, m, s))


@router.post("/organisations/{organisation_id}/members")
def add_member(
    request: Request,
    organisation_id: str,
    data: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def add() -> str:
        organisation = organisation_for(p, user, organisation_id, MANAGE)
        member = existing_user(p, field(data, "email"))
        role = choice(data, "role", MembershipRole)
        if role is MembershipRole.OWNER and organisation.owner_id != user.id:
            raise NotAllowed("Only the organisation's owner makes someone else an owner.")
        if p.repos.memberships.find(
            user_id=member.id, organisation_id=organisation.id, team_id=None
        ):
            raise hutch.IntegrityError(
                f"{member.email} is a member of {organisation.name} already."
            )
        p.repos.memberships.create(user_id=member.id, organisation_id=organisation.id, role=role)
        return f"/organisations/{organisation.id}"

    return act(p, add, lambda m, s: show(request, p, user, organisation_id, m, s))


@router.post("/organisations/{organisation_id}/members/{membership_id}/remove")
def remove_member(
    request: Request,
    organisation_id: str,
    membership_id: str,
    _: Posted,
    user: SignedIn,
    p: Site,
) -> Response:
    def remove() -> str:
        organisation = organisation_for(p, user, organisation_id, MANAGE)
        membership = p.repos.memberships.get(checked_id(membership_id))
        if membership is None or membership.organisation_id != organisation.id:
            raise PageNotFound()
        if membership.user_id == organisation.owner_id and membership.team_id is None:
            raise hutch.IntegrityError("The owner stays a member of their organisation.")
        if membership.role is MembershipRole.OWNER and organisation.owner_id != user.id:
            raise NotAllowed("Only the organisation's owner removes an owner.")
        leaving = [membership]  # out of the organisation: out of its teams too
        if membership.team_id is None:
            leaving = p.repos.memberships.find(
                user_id=membership.user_id, organisation_id=organisation.id
            )
        for gone in leaving:
            p.repos.memberships.delete(gone.id)
        return f"/organisations/{organisation.id}"

    return act(p, remove, lambda m, s: show(request, p, user, organisation_id, m, s))


def show_list(
    request: Request, p: Platform, user: User, error: str | None = None, status: int = 200
) -> Response:
    organisations = p.repos.memberships.get_user_organisations(user.id)
    return render(
        request,
        "organisations.html",
        user=user,
        organisations=organisations,
        error=error,
        status=status,
    )


def show(
    request: Request,
    p: Platform,
    user: User,
    organisation_id: str,
    error: str | None = None,
    status: int = 200,
) -> Response:
    organisation = organisation_for(p, user, organisation_id)
    role = membership_role(p, user, organisation.id)
    r = p.repos
    memberships = r.memberships.find_by_organisation(organisation.id)
    people = {person.id: person for person in r.organisations.get_members(organisation.id)}
    teams = {team.id: team for team in r.organisations.get_teams(organisation.id)}
    return render(
        request,
        "organisation.html",
        user=user,
        organisation=organisation,
        owner=r.users.get(organisation.owner_id),
        memberships=memberships,
        people=people,
        teams=teams,
        projects=r.organisations.get_projects(organisation.id),
        roles=list(MembershipRole),
        may_manage=role in MANAGE,
        may_work=role in WORK,
        error=error,
        status=status,
    )


def existing_user(p: Platform, email: str) -> User:
    """The user who signed up with ``email``; else an error the page shows."""
    found = p.repos.users.find_by_email(email)
    if found is None:
        raise hutch.NotFound(f"Nobody has signed up as {email!r}: they sign up first.")
    return found
