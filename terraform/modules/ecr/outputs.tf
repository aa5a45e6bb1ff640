output "repositories" {
  description = "ECR repositories by manifest function name (image functions only): {name, arn, repository_url, registry_id}. repository_url is the function's image.repository, where `cargo xtask push` pushes."
  value = {
    for name, repository in aws_ecr_repository.function : name => {
      name           = repository.name
      arn            = repository.arn
      repository_url = repository.repository_url
      registry_id    = repository.registry_id
    }
  }
}
