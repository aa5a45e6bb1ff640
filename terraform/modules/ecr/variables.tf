variable "manifest" {
  description = "The outputs of the manifest module: pass `module.manifest` whole. One repository is created per function whose package_type is \"Image\", named after its image.repository."
  type = object({
    functions = map(object({
      package_type = optional(string, "Zip")
      image = optional(object({
        repository = string # <registry host>/<path>/<function>, null when no image_repository is configured
      }))
    }))
  })
}

variable "keep_images" {
  description = "How many images each repository keeps, the most recently pushed: older ones are expired by an ECR lifecycle policy. A rollback can point a function back at any digest still kept, so keep more than the pushes between two deploys."
  type        = number
  default     = 10

  validation {
    condition     = var.keep_images >= 1 && floor(var.keep_images) == var.keep_images
    error_message = "keep_images must be a whole number of at least 1."
  }
}

variable "force_delete" {
  description = "Whether destroying a repository (its function left the manifest or became a ZIP function) also deletes the images in it. false: such a destroy fails while the repository holds images."
  type        = bool
  default     = false
}

variable "tags" {
  description = "Tags added to every repository."
  type        = map(string)
  default     = {}
}
