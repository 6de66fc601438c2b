//! (stub until the mail branch lands)
pub fn validate_address(_s: &str) -> Result<(), String> {
    Ok(())
}
pub fn check_header(_name: &str, _s: &str) -> Result<(), String> {
    Ok(())
}
