//! Themes built on semantic roles with fallbacks (a role a theme leaves out borrows from a
//! more general one), loaded from TOML. `NO_COLOR` keeps the modifiers and drops colors.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

pub const BUILT_IN: [(&str, &str); 3] = [
    ("dark", include_str!("../../themes/dark.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
];

/// What a piece of the screen means; the theme decides how it looks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Text,
    Muted,
    Accent,
    Title,
    Border,
    BorderFocused,
    Selection,
    Marked,
    Header,
    StatusBar,
    StatusKey,
    TabActive,
    Error,
    Warning,
    Success,
    Info,
    DiffAdd,
    DiffDel,
    DiffHunk,
    RiskHigh,
    RiskMedium,
    RiskLow,
}

impl Role {
    const ALL: [Role; 22] = [
        Role::Text,
        Role::Muted,
        Role::Accent,
        Role::Title,
        Role::Border,
        Role::BorderFocused,
        Role::Selection,
        Role::Marked,
        Role::Header,
        Role::StatusBar,
        Role::StatusKey,
        Role::TabActive,
        Role::Error,
        Role::Warning,
        Role::Success,
        Role::Info,
        Role::DiffAdd,
        Role::DiffDel,
        Role::DiffHunk,
        Role::RiskHigh,
        Role::RiskMedium,
        Role::RiskLow,
    ];

    fn key(self) -> &'static str {
        match self {
            Role::Text => "text",
            Role::Muted => "muted",
            Role::Accent => "accent",
            Role::Title => "title",
            Role::Border => "border",
            Role::BorderFocused => "border_focused",
            Role::Selection => "selection",
            Role::Marked => "marked",
            Role::Header => "header",
            Role::StatusBar => "status_bar",
            Role::StatusKey => "status_key",
            Role::TabActive => "tab_active",
            Role::Error => "error",
            Role::Warning => "warning",
            Role::Success => "success",
            Role::Info => "info",
            Role::DiffAdd => "diff_add",
            Role::DiffDel => "diff_del",
            Role::DiffHunk => "diff_hunk",
            Role::RiskHigh => "risk_high",
            Role::RiskMedium => "risk_medium",
            Role::RiskLow => "risk_low",
        }
    }

    /// The more general role used when a theme does not define this one.
    fn fallback(self) -> Option<Role> {
        Some(match self {
            Role::Text => return None,
            Role::Title | Role::BorderFocused | Role::StatusKey | Role::TabActive => Role::Accent,
            Role::Header => Role::Title,
            Role::Muted
            | Role::Accent
            | Role::Border
            | Role::Selection
            | Role::StatusBar
            | Role::Error
            | Role::Warning
            | Role::Success
            | Role::Info => Role::Text,
            Role::Marked | Role::RiskMedium => Role::Warning,
            Role::DiffAdd | Role::RiskLow => Role::Success,
            Role::DiffDel | Role::RiskHigh => Role::Error,
            Role::DiffHunk => Role::Info,
        })
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(clippy::struct_excessive_bools)] // mirrors the TOML: one flag per modifier
struct RoleSpec {
    fg: Option<String>,
    bg: Option<String>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reversed: bool,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThemeFile {
    name: Option<String>,
    /// Start from a built-in theme and override some roles.
    extends: Option<String>,
    #[serde(default)]
    roles: HashMap<String, RoleSpec>,
}

/// A resolved theme: one style per role.
#[derive(Debug, Clone)]
pub struct Theme {
    pub name: String,
    /// One style per role, indexed by the role (looked up for every cell drawn).
    styles: [Style; Role::ALL.len()],
}

impl Theme {
    pub fn style(&self, role: Role) -> Style {
        self.styles[role as usize]
    }

    /// A theme with no colors at all (`NO_COLOR`, tests), still readable through modifiers.
    pub fn plain() -> Self {
        let mut styles = [Style::default(); Role::ALL.len()];
        for role in Role::ALL {
            let s = Style::default();
            let s = match role {
                Role::Selection | Role::TabActive => s.add_modifier(Modifier::REVERSED),
                Role::Title | Role::Accent | Role::Header | Role::StatusKey | Role::Marked => {
                    s.add_modifier(Modifier::BOLD)
                }
                Role::Error | Role::RiskHigh => s.add_modifier(Modifier::BOLD),
                _ => s,
            };
            styles[role as usize] = s;
        }
        Theme {
            name: "plain".into(),
            styles,
        }
    }

    /// A built-in theme by name.
    pub fn built_in(name: &str) -> Option<Self> {
        let (_, text) = BUILT_IN.iter().find(|(n, _)| *n == name)?;
        Self::from_toml(text, Path::new(name)).ok()
    }

    /// Parses a theme file; errors name the file, line and column.
    pub fn from_toml(text: &str, path: &Path) -> crate::core::Result<Self> {
        let file: ThemeFile = crate::core::toml_text::parse(text, path)?;
        let mut specs: HashMap<Role, RoleSpec> = HashMap::new();
        if let Some(base) = &file.extends {
            let (_, base_text) = BUILT_IN.iter().find(|(n, _)| n == base).ok_or_else(|| {
                crate::core::Error::Other(format!(
                    "{}: unknown theme {base:?} in extends (built in: dark, light, high-contrast)",
                    path.display()
                ))
            })?;
            let base: ThemeFile = crate::core::toml_text::parse(base_text, Path::new(base))?;
            collect(&base, &mut specs, path)?;
        }
        collect(&file, &mut specs, path)?;
        let mut styles = [Style::default(); Role::ALL.len()];
        for role in Role::ALL {
            let mut r = Some(role);
            let mut style = Style::default();
            while let Some(current) = r {
                if let Some(spec) = specs.get(&current) {
                    style = to_style(spec, path)?;
                    break;
                }
                r = current.fallback();
            }
            styles[role as usize] = style;
        }
        Ok(Theme {
            name: file.name.unwrap_or_else(|| path.display().to_string()),
            styles,
        })
    }

    /// Chooses the theme: `NO_COLOR` → plain; `KEEL_THEME` (a built-in name or a file);
    /// `<workspace>/theme.toml`; else dark.
    pub fn load(workspace: &Path) -> anyhow::Result<Self> {
        if std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()) {
            return Ok(Self::plain());
        }
        if let Ok(choice) = std::env::var("KEEL_THEME")
            && !choice.is_empty()
        {
            if let Some(t) = Self::built_in(&choice) {
                return Ok(t);
            }
            let text = std::fs::read_to_string(&choice)
                .map_err(|e| anyhow::anyhow!("KEEL_THEME={choice}: {e}"))?;
            return Ok(Self::from_toml(&text, Path::new(&choice))?);
        }
        let path = workspace.join("theme.toml");
        if path.exists() {
            let text = std::fs::read_to_string(&path)?;
            return Ok(Self::from_toml(&text, &path)?);
        }
        Ok(Self::built_in("dark").unwrap_or_else(Self::plain))
    }
}

fn collect(
    file: &ThemeFile,
    specs: &mut HashMap<Role, RoleSpec>,
    path: &Path,
) -> crate::core::Result<()> {
    for (key, spec) in &file.roles {
        let role = Role::ALL.iter().find(|r| r.key() == key).ok_or_else(|| {
            crate::core::Error::Other(format!("{}: unknown theme role {key:?}", path.display()))
        })?;
        specs.insert(*role, spec.clone());
    }
    Ok(())
}

fn to_style(spec: &RoleSpec, path: &Path) -> crate::core::Result<Style> {
    let color = |c: &Option<String>| -> crate::core::Result<Option<Color>> {
        c.as_deref()
            .map(|text| {
                Color::from_str(text).map_err(|_| {
                    crate::core::Error::Other(format!("{}: unknown color {text:?}", path.display()))
                })
            })
            .transpose()
    };
    let mut style = Style::default();
    if let Some(fg) = color(&spec.fg)? {
        style = style.fg(fg);
    }
    if let Some(bg) = color(&spec.bg)? {
        style = style.bg(bg);
    }
    for (on, m) in [
        (spec.bold, Modifier::BOLD),
        (spec.italic, Modifier::ITALIC),
        (spec.underline, Modifier::UNDERLINED),
        (spec.reversed, Modifier::REVERSED),
    ] {
        if on {
            style = style.add_modifier(m);
        }
    }
    Ok(style)
}
