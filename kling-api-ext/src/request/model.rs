//! The model ids the SDK knows, what each costs, and any other id.

use crate::error::{Error, Field};
use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// The model to generate with. The default is the one Apikley documents.
///
/// The service serves more ids than its document lists, and may add more:
/// [`Model::custom`] sends any id, unchecked (the service answers an id it
/// does not serve with a 422, before any task exists).
///
/// ```
/// use kling_api_ext::Model;
///
/// assert_eq!(Model::default().as_str(), "kling/ai-avatar-v1-pro");
/// let standard: Model = "kling/v1-avatar-standard".parse()?;
/// assert_eq!(standard, Model::V1AvatarStandard);
/// // A known id given to `custom` is the known model.
/// assert_eq!(Model::custom("kling/ai-avatar-pro"), Model::AvatarPro);
/// let other = Model::custom("kling/ai-avatar-v2-pro");
/// assert!(!other.is_known());
/// assert_eq!(other.as_str(), "kling/ai-avatar-v2-pro");
/// # Ok::<(), kling_api_ext::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Model {
    /// `kling/ai-avatar-v1-pro` (1080p; Apikley's documented id).
    #[default]
    AvatarV1Pro,
    /// `kling/ai-avatar-pro` (1080p; kie.ai's current id).
    AvatarPro,
    /// `kling/ai-avatar-standard` (720p).
    AvatarStandard,
    /// `kling/v1-avatar-standard` (720p; the id a third-party MCP server and
    /// kie-go's model registry send).
    V1AvatarStandard,
    /// Any other id, sent as given: made by [`Model::custom`].
    Custom(String),
}

impl Model {
    /// Every model id this SDK knows.
    pub const ALL: &'static [Model] = &[
        Model::AvatarV1Pro,
        Model::AvatarPro,
        Model::AvatarStandard,
        Model::V1AvatarStandard,
    ];

    /// Any model id: a known one gives its variant, anything else
    /// [`Model::Custom`]. Nothing checks that the service serves it; a request
    /// with an unknown id carries a warning saying so, and an empty or blank id
    /// is refused when the request is built.
    pub fn custom(id: impl Into<String>) -> Model {
        let id = id.into();
        Model::ALL
            .iter()
            .find(|m| m.as_str() == id)
            .cloned()
            .unwrap_or(Model::Custom(id))
    }

    /// [`Model::custom`], refusing what cannot be a model id (blank, with
    /// whitespace or control characters, over 200 characters), as building a
    /// request does: for ids read from a command line or a file.
    ///
    /// ```
    /// use kling_api_ext::Model;
    ///
    /// assert_eq!(Model::try_custom("kling/ai-avatar-pro")?, Model::AvatarPro);
    /// assert!(Model::try_custom("kling ai").is_err());
    /// # Ok::<(), kling_api_ext::Error>(())
    /// ```
    pub fn try_custom(id: impl Into<String>) -> Result<Model, Error> {
        let model = Model::custom(id);
        model.check()?;
        Ok(model)
    }

    /// The id sent as `model`.
    pub fn as_str(&self) -> &str {
        match self {
            Model::AvatarV1Pro => "kling/ai-avatar-v1-pro",
            Model::AvatarPro => "kling/ai-avatar-pro",
            Model::AvatarStandard => "kling/ai-avatar-standard",
            Model::V1AvatarStandard => "kling/v1-avatar-standard",
            Model::Custom(id) => id,
        }
    }

    /// Whether this SDK knows the id (every variant but [`Model::Custom`]).
    pub fn is_known(&self) -> bool {
        !matches!(self, Model::Custom(_))
    }

    /// The documented price in credits per generated second (kie.ai's catalogue:
    /// 16 for Pro at 1080p, 8 for Standard at 720p; Apikley's price is not
    /// published, so the client lets you set your own). For an id the SDK does
    /// not know, the highest known price, so that a spending limit errs on the
    /// safe side.
    pub fn credits_per_second(&self) -> f64 {
        match self {
            Model::AvatarStandard | Model::V1AvatarStandard => 8.0,
            Model::AvatarV1Pro | Model::AvatarPro | Model::Custom(_) => 16.0,
        }
    }

    /// Whether a request may carry this id: a custom id must be a plain
    /// token (not blank, no whitespace or control characters, at most 200
    /// characters).
    pub(crate) fn check(&self) -> Result<(), Error> {
        let Model::Custom(id) = self else {
            return Ok(());
        };
        let bad = if id.is_empty() {
            Some("it is empty")
        } else if id.chars().any(|c| c.is_whitespace() || c.is_control()) {
            Some("it contains whitespace or control characters")
        } else if id.chars().count() > 200 {
            Some("it is longer than 200 characters")
        } else {
            None
        };
        match bad {
            Some(why) => Err(Error::invalid(
                Field::Model,
                Some(id.clone()),
                format!("{why}; a model id is a token such as {}", Model::default()),
            )),
            None => Ok(()),
        }
    }

    /// The warning an unknown id gets.
    pub(crate) fn warning(&self) -> Option<String> {
        match self {
            Model::Custom(id) => Some(format!(
                "model {id} is not one this SDK knows ({}); it is sent unchecked, and the \
                 service refuses an id it does not serve (422) before any task exists",
                known().join(", ")
            )),
            _ => None,
        }
    }

    /// The generated field is a plain string (kling-api's `open_model_ids` patch).
    pub(crate) fn wire(&self) -> String {
        self.as_str().to_owned()
    }
}

fn known() -> Vec<&'static str> {
    Model::ALL
        .iter()
        .map(|m| match m {
            Model::AvatarV1Pro => "kling/ai-avatar-v1-pro",
            Model::AvatarPro => "kling/ai-avatar-pro",
            Model::AvatarStandard => "kling/ai-avatar-standard",
            Model::V1AvatarStandard => "kling/v1-avatar-standard",
            Model::Custom(_) => "",
        })
        .collect()
}

impl fmt::Display for Model {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a **known** id, so a typo in code is caught; use [`Model::custom`]
/// for any other.
impl FromStr for Model {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match Model::custom(s) {
            Model::Custom(_) => Err(Error::invalid(
                Field::Model,
                Some(s.to_owned()),
                format!(
                    "unknown model; known: {} (Model::custom sends any other id)",
                    known().join(", ")
                ),
            )),
            model => Ok(model),
        }
    }
}

impl Serialize for Model {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn models_parse_and_map_to_the_wire() {
        for model in Model::ALL {
            assert_eq!(model.as_str().parse::<Model>().unwrap(), *model);
            assert_eq!(Model::custom(model.as_str()), *model);
            assert_eq!(model.wire(), model.as_str());
            assert!(model.is_known() && model.warning().is_none());
        }
        let error = "kling/ai-avatar-v9".parse::<Model>().unwrap_err();
        assert!(
            error.to_string().contains("kling/v1-avatar-standard"),
            "{error}"
        );
        assert_eq!(Model::default(), Model::AvatarV1Pro);
    }

    #[test]
    fn any_other_id_is_sent_with_a_warning() {
        let model = Model::custom("acme/avatar-9");
        assert_eq!(model.wire(), "acme/avatar-9");
        assert!(model.check().is_ok());
        assert!(model.warning().unwrap().contains("unchecked"));
        assert_eq!(model.credits_per_second(), 16.0);
        for bad in ["", "kling/ai avatar", "a\u{7}b", &"x".repeat(201)] {
            let error = Model::custom(bad).check().unwrap_err();
            assert!(
                matches!(
                    error,
                    Error::InvalidInput {
                        field: Field::Model,
                        ..
                    }
                ),
                "{bad:?}"
            );
        }
    }
}
