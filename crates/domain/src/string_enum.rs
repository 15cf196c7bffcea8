//! One definition of the enums stored and sent as fixed strings: their
//! variants, `ALL`, `as_str`, `Display` and a `FromStr` that names the
//! allowed values when it refuses one.

/// Declares an enum whose variants each have a fixed string form.
///
/// ```ignore
/// string_enum! {
///     /// Docs.
///     pub enum Colour ("colour") {
///         Red = "red",
///         DarkBlue = "dark_blue",
///     }
/// }
/// ```
///
/// `"colour"` names the value in the parse error: `` `x` is not one of red,
/// dark_blue ``.
#[macro_export]
macro_rules! string_enum {
    (@unit $variant:ident) => { () };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident = $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [Self; <[()]>::len(&[$($crate::string_enum!(@unit $variant)),+])] =
                [$(Self::$variant),+];

            /// The stored (and sent) form.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::ValidationError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::ALL
                    .into_iter()
                    .find(|v| v.as_str() == s)
                    .ok_or_else(|| {
                        let names: Vec<&str> = Self::ALL.iter().map(|v| v.as_str()).collect();
                        $crate::ValidationError::new(
                            $what,
                            format!("`{s}` is not one of {}", names.join(", ")),
                        )
                    })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    crate::string_enum! {
        /// A test enum.
        pub enum Colour ("colour") {
            Red = "red",
            /// Documented.
            DarkBlue = "dark_blue",
        }
    }

    #[test]
    fn round_trips_and_names_the_allowed_values_when_refusing() {
        for c in Colour::ALL {
            assert_eq!(c.as_str().parse::<Colour>(), Ok(c));
            assert_eq!(c.to_string(), c.as_str());
        }
        let err = "blue".parse::<Colour>().unwrap_err().to_string();
        assert!(
            err.contains("colour") && err.contains("`blue` is not one of red, dark_blue"),
            "{err}"
        );
    }
}
