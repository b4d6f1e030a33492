//! The payer as Efí's charges name them: by a CPF (a person) or a CNPJ (a company).

use super::client::failed;
use crate::payments::{Payer, PaymentError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Document<'a> {
    Cpf(&'a str),
    Cnpj(&'a str),
}

/// The payer's tax id by its kind. Its check digits are Efí's to verify; a tax id of the
/// wrong shape is refused here, before a call that could only fail.
pub fn document(payer: &Payer) -> Result<Document<'_>, PaymentError> {
    let id = payer.tax_id.as_str();
    if payer.name.trim().is_empty() {
        return Err(failed("the payer needs a name"));
    }
    if !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(failed("the payer's tax id must be digits only"));
    }
    match id.len() {
        11 => Ok(Document::Cpf(id)),
        14 => Ok(Document::Cnpj(id)),
        _ => Err(failed(
            "the payer's tax id must be a CPF (11 digits) or a CNPJ (14 digits)",
        )),
    }
}
