//! Enums with a text name per variant, from one definition: [`named_enum!`] writes the enum, its
//! `ALL` and `NAMES`, `as_str`, `Display` and `FromStr`, whose error ([`UnknownName`]) names the
//! kind of value and the names it expected.

use std::fmt;

/// How a parse error lists the expected names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// `a, b or c`.
    Or,
    /// `one of a b c`.
    OneOf,
}

/// A name that is none of an enum's names: `unknown protocol "x" (expected tcp, udp or sctp)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownName {
    /// What the value should have named (`protocol`, `scheduler flag`).
    pub what: &'static str,
    /// The text as given.
    pub value: String,
    /// The names accepted (aliases aside), in declaration order.
    pub expected: &'static [&'static str],
    pub listing: Listing,
}

impl fmt::Display for UnknownName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?} (expected ", self.what, self.value)?;
        match self.listing {
            Listing::OneOf => write!(f, "one of {}", self.expected.join(" "))?,
            Listing::Or => match self.expected.split_last() {
                Some((last, [])) => f.write_str(last)?,
                Some((last, rest)) => write!(f, "{} or {last}", rest.join(", "))?,
                None => {}
            },
        }
        f.write_str(")")
    }
}

impl std::error::Error for UnknownName {}

/// Whether `given` is `name`; `case_insensitive` tables compare ASCII letters without case.
#[doc(hidden)]
pub fn name_matches(given: &str, name: &str, case_insensitive: bool) -> bool {
    if case_insensitive {
        given.eq_ignore_ascii_case(name)
    } else {
        given == name
    }
}

/// An enum of unit variants with one canonical name each (and optional aliases that parse but
/// are never printed):
///
/// ```
/// cluster_core::named_enum! {
///     /// Example.
///     #[derive(Clone, Copy, Debug, PartialEq, Eq)]
///     pub enum Colour {
///         Red => "red" | "r",
///         Blue => "blue",
///     }
///     unknown = "colour", case_insensitive = true, listing = Or;
/// }
/// assert_eq!("R".parse::<Colour>(), Ok(Colour::Red));
/// assert_eq!(Colour::Blue.to_string(), "blue");
/// assert_eq!(
///     "x".parse::<Colour>().unwrap_err().to_string(),
///     r#"unknown colour "x" (expected red or blue)"#
/// );
/// ```
///
/// `unknown` names the kind of value in the parse error; `listing` is a [`Listing`]. Writing
/// `display = false;` after that line leaves `Display` to the caller (for enums whose human
/// text differs from their name). Serde stays with the caller's derive and `rename` attributes.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal $(| $alias:literal)* ),+ $(,)?
        }
        unknown = $what:literal, case_insensitive = $ci:literal, listing = $listing:ident;
        display = false;
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every variant, in declaration order.
            pub const ALL: [$name; <[&str]>::len(&[$($text),+])] = [$($name::$variant),+];
            /// The canonical name of every variant, in declaration order.
            pub const NAMES: &'static [&'static str] = &[$($text),+];

            /// The canonical name.
            pub fn as_str(&self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }
        }

        impl ::std::str::FromStr for $name {
            type Err = $crate::names::UnknownName;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $(
                    if $crate::names::name_matches(s, $text, $ci)
                        $( || $crate::names::name_matches(s, $alias, $ci) )*
                    {
                        return Ok($name::$variant);
                    }
                )+
                Err($crate::names::UnknownName {
                    what: $what,
                    value: s.to_string(),
                    expected: $name::NAMES,
                    listing: $crate::names::Listing::$listing,
                })
            }
        }
    };
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident { $($body:tt)* }
        unknown = $what:literal, case_insensitive = $ci:literal, listing = $listing:ident;
    ) => {
        $crate::named_enum! {
            $(#[$meta])*
            $vis enum $name { $($body)* }
            unknown = $what, case_insensitive = $ci, listing = $listing;
            display = false;
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    crate::named_enum! {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum Three {
            A => "a" | "alpha",
            B => "b",
            C => "c",
        }
        unknown = "letter", case_insensitive = false, listing = Or;
    }

    crate::named_enum! {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        enum One {
            Only => "only",
        }
        unknown = "single", case_insensitive = true, listing = OneOf;
    }

    #[test]
    fn names_aliases_and_case() {
        assert_eq!(Three::ALL, [Three::A, Three::B, Three::C]);
        assert_eq!(Three::NAMES, ["a", "b", "c"]);
        assert_eq!(Three::B.as_str(), "b");
        assert_eq!(Three::A.to_string(), "a");
        assert_eq!("alpha".parse::<Three>(), Ok(Three::A));
        assert!("A".parse::<Three>().is_err());
        assert_eq!("ONLY".parse::<One>(), Ok(One::Only));
        assert_eq!(One::ALL, [One::Only]);
    }

    #[test]
    fn errors_list_the_expected_names() {
        let e = "x".parse::<Three>().unwrap_err();
        assert_eq!(e.to_string(), r#"unknown letter "x" (expected a, b or c)"#);
        assert_eq!(e.value, "x");
        assert_eq!(
            "y".parse::<One>().unwrap_err().to_string(),
            r#"unknown single "y" (expected one of only)"#
        );
        let two = UnknownName {
            what: "flag",
            value: String::new(),
            expected: &["p", "q"],
            listing: Listing::Or,
        };
        assert_eq!(two.to_string(), r#"unknown flag "" (expected p or q)"#);
    }
}
