"""A mail as the domain sees it: parsing (charsets, headers, SES's block, MIME, HTML to text), the model the
other steps read, and the account identifiers it names."""
