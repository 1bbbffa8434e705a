// Log Analytics Reader on one workspace of an audited environment, for execution history.
targetScope = 'resourceGroup'

@description('Name of the workspace (in this module\'s resource group).')
param workspaceName string

@description('Principal (object) id of the job identity.')
param principalId string

@description('GUID of the built-in role to grant (Log Analytics Reader).')
param roleDefinitionGuid string

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' existing = {
  name: workspaceName
}

resource logsReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(workspace.id, principalId, roleDefinitionGuid)
  scope: workspace
  properties: {
    principalId: principalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleDefinitionGuid)
  }
}
