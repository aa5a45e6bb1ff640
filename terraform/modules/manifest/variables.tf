variable "manifest_path" {
  description = "Path to the dist/manifest.json written by `cargo xtask build`."
  type        = string

  validation {
    condition     = fileexists(var.manifest_path)
    error_message = "No manifest at ${var.manifest_path}: run `cargo xtask build` at the repository root first (it writes dist/manifest.json)."
  }
}

variable "repo_root" {
  description = <<-EOT
    Directory the manifest's paths are relative to. Defaults to the directory
    that holds dist/ (two levels above manifest_path). Absolute or relative:
    the `zip` paths are rewritten relative to the directory Terraform runs in,
    so they (and `filename`) do not change with the spelling. Run Terraform
    from the same directory every time.
  EOT
  type        = string
  default     = null
}

variable "verify_files" {
  description = "Check at plan time that every ZIP named in the manifest exists and still has the manifest's base64sha256 (a stale dist/ fails here, not half-way through an apply)."
  type        = bool
  default     = true
}
