-- Argo CD health check for vm.novasphere.dev/Wukong (argocd-cm: resource.customizations.health.vm.novasphere.dev_Wukong).
-- It reads what kstatus reads (status.observedGeneration, the Stalled, Reconciling and Ready conditions) plus the
-- phase, so Argo CD and Flux agree: Progressing until the VM runs, Degraded while a problem waits for someone to act
-- (the Stalled condition: every problem Degraded reports; the phases Blocked and Error), Suspended while its user keeps
-- the VM stopped, Healthy while it runs. tests/e2e/test_gitops.py runs it against real Wukongs in every phase.
local hs = {}
local status = obj.status
if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the reconciler's first look"
  return hs
end
if obj.metadata.generation ~= nil and status.observedGeneration ~= obj.metadata.generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the reconciler to observe generation " .. tostring(obj.metadata.generation)
  return hs
end
local conditions = {}
if status.conditions ~= nil then
  for _, condition in ipairs(status.conditions) do
    conditions[condition.type] = condition
  end
end
local function holds(kind)
  return conditions[kind] ~= nil and conditions[kind].status == "True"
end
local function says(kind, fallback)
  local condition = conditions[kind]
  if condition == nil then
    return fallback
  end
  return condition.reason .. ": " .. (condition.message or "")
end
if holds("Stalled") or holds("Degraded") or status.phase == "Blocked" or status.phase == "Error" then
  hs.status = "Degraded"
  hs.message = says("Stalled", says("Degraded", "phase " .. tostring(status.phase)))
  return hs
end
if holds("Reconciling") then
  hs.status = "Progressing"
  hs.message = says("Reconciling", "")
  return hs
end
if status.phase == "Stopped" then
  hs.status = "Suspended"
  hs.message = "The virtual machine is stopped; its user starts it (virtctl start, or the VM's runStrategy)"
  return hs
end
if status.phase == "Running" and holds("Ready") then
  hs.status = "Healthy"
  hs.message = says("Ready", "The virtual machine is running")
  return hs
end
hs.status = "Progressing"
hs.message = says("Ready", "phase " .. tostring(status.phase))
return hs
