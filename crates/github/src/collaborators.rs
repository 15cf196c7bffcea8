//! Who may steer a preview from the PR: a person's permission on a
//! repository, as GitHub's collaborator permission API says it.

use ephemera_application::ports::{Permission, ReportError};
use ephemera_domain::{InstallationId, RepositoryFullName};
use http::Method;
use serde::Deserialize;

use crate::contents::encoded;
use crate::{GitHubApp, classify_call, transport};

#[derive(Deserialize)]
struct PermissionBody {
    permission: String,
    #[serde(default)]
    role_name: Option<String>,
}

/// GitHub's answer as a [`Permission`].
///
/// `permission` is the legacy base role, one of admin, write, read and
/// none (maintain reads as write, triage as read); `role_name` names the
/// role itself, custom roles included. The base role decides, and
/// `role_name` only refines it within the same base (maintain under write,
/// triage under read): neither a custom role's name nor a `role_name` that
/// disagrees with the base can raise what someone may do. Anything else
/// GitHub might say counts as no permission.
fn permission_of(body: &PermissionBody) -> Permission {
    let base = body.permission.parse().unwrap_or_else(|_| {
        tracing::warn!(
            permission = %body.permission,
            "GitHub named a repository permission ephemera does not know; taken as none"
        );
        Permission::None
    });
    match (base, body.role_name.as_deref()) {
        (Permission::Write, Some("maintain")) => Permission::Maintain,
        (Permission::Read, Some("triage")) => Permission::Triage,
        _ => base,
    }
}

impl GitHubApp {
    pub(crate) async fn permission(
        &self,
        installation: InstallationId,
        repository: &RepositoryFullName,
        login: &str,
    ) -> Result<Permission, ReportError> {
        const OPERATION: &str = "repos/get-collaborator-permission-level";
        let client = self.client(installation)?;
        let answer = transport::send::<PermissionBody>(
            &client,
            OPERATION,
            Method::GET,
            format!(
                "/repos/{}/{}/collaborators/{}/permission",
                repository.owner(),
                repository.name(),
                encoded(login)
            ),
            None::<&()>,
        )
        .await;
        match answer {
            Ok(body) => Ok(permission_of(&body)),
            // No such user, or one GitHub does not show as a collaborator.
            Err(octocrab::Error::GitHub { source, .. }) if source.status_code.as_u16() == 404 => {
                Ok(Permission::None)
            }
            Err(e) => Err(classify_call(
                OPERATION,
                &format!("reading {login}'s permission on {repository}"),
                e,
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(permission: &str, role_name: Option<&str>) -> Permission {
        permission_of(&PermissionBody {
            permission: permission.to_owned(),
            role_name: role_name.map(str::to_owned),
        })
    }

    #[test]
    fn the_base_role_decides_and_the_role_name_refines_it() {
        assert_eq!(of("admin", Some("admin")), Permission::Admin);
        assert_eq!(of("write", Some("maintain")), Permission::Maintain);
        assert_eq!(of("write", Some("write")), Permission::Write);
        assert_eq!(of("read", Some("triage")), Permission::Triage);
        assert_eq!(of("read", Some("read")), Permission::Read);
        assert_eq!(of("none", None), Permission::None);
        // A custom role counts as its base.
        assert_eq!(of("write", Some("deployer")), Permission::Write);
        // role_name never raises the base.
        assert_eq!(of("read", Some("maintain")), Permission::Read);
        assert_eq!(of("none", Some("admin")), Permission::None);
        assert_eq!(of("owner", None), Permission::None);
    }
}
