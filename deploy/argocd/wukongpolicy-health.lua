-- Argo CD health check for vm.novasphere.dev/WukongPolicy
-- (argocd-cm: resource.customizations.health.vm.novasphere.dev_WukongPolicy). A policy acts at admission, so it is
-- Healthy once the reconciler has audited the existing Wukongs against its generation; the Wukongs created before it
-- that break it are named in the message (they are their owners' to fix, not the policy's), Progressing until then.
local hs = {}
local status = obj.status
if status == nil or status.observedGeneration == nil or
    (obj.metadata.generation ~= nil and status.observedGeneration ~= obj.metadata.generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the reconciler to audit the existing Wukongs against this policy"
  return hs
end
hs.status = "Healthy"
local violations = status.violations or 0
if violations == 0 then
  hs.message = "No existing Wukong breaks this policy"
else
  hs.message = tostring(violations) .. " existing Wukong(s) break this policy (status.violating names them)"
end
return hs
