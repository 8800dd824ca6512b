// One Key Vault secret and the one identity that may read it: Key Vault Secrets User on this
// secret alone, not on the vault.
param vaultName string
param name string
@secure()
param value string
param contentType string
@description('When rotation is due (Unix seconds), flagged by Azure Policy, not enforced; 0: never rotates.')
param expiresAt int = 0
param readerPrincipalId string

var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: vaultName
}

resource secret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  //checkov:skip=CKV_AZURE_41:the caller sets an expiry where the secret rotates (the webhook secret); the pseudonymization key never rotates (same number, same hash across time)
  parent: vault
  name: name
  properties: {
    value: value
    contentType: contentType
    attributes: (expiresAt > 0) ? { exp: expiresAt } : {} // brackets: checkov's parser binds ?: first
  }
}

resource read 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(secret.id, readerPrincipalId, keyVaultSecretsUser)
  scope: secret
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}
