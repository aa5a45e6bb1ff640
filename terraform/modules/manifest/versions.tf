terraform {
  # `terraform test` (used by tests/) needs 1.6. No providers: this module
  # reads a file and does arithmetic, so it initialises and tests offline.
  required_version = ">= 1.6"
}
